/**
 * The node flags the bridge process runs with: `npm start` and `npm run demo` pass them, and a service runs
 * `node --no-memory-reducer bin/agent-bridge.js start`. They are V8 options, which take effect only on node's command
 * line: NODE_OPTIONS refuses them, and `v8.setFlagsFromString` comes too late once the heap exists.
 *
 * `--no-memory-reducer`: V8's memory reducer runs up to three memory-reducing full GCs once a process's allocation rate
 * drops (8 s after a full GC). A bridge whose devices are quiet, the common case at the edge, drops there again and
 * again. Those GCs let go of hidden classes an ordinary full GC keeps a while longer, and optimized code that checked
 * one is thrown away (V8's log shows it as "weak objects" deoptimizations), so after every quiet spell a device's
 * message runs the broker, agent and engine-client path in baseline code until thousands of messages optimize it again;
 * they also shrink the young generation, whose pages each message then faults in afresh. Measured with one device
 * asking after 0.7 s pauses once a 64- or 256-device burst had optimized the path: 0.41-0.61 ms added to the first
 * chunk with the flag against 0.87-1.26 ms without in the same runs, and 0-25 page faults per question against 42-51;
 * in two full runs of the engine benchmark 0.92 and 0.97 against 1.04 and 1.23 ms (docs/benchmarks.md, "Session 15"). A
 * bridge whose path was never hot (one device since its start) gains nothing: that path runs in baseline code either
 * way. What it costs: the heap keeps the size a burst gave it instead of shrinking when the bridge goes quiet (RSS
 * 257-329 MiB against 235 after 256 devices asked at once; ordinary GCs still run and reuse it). An operator short of
 * memory runs node without the flag.
 */
export const BRIDGE_NODE_FLAGS: readonly string[] = Object.freeze(["--no-memory-reducer"]);

/** Whether `execArgv` (node's own flags) turns V8's memory reducer off, in any spelling V8 takes. */
export function memoryReducerOff(execArgv: readonly string[] = process.execArgv): boolean {
  let off = false;
  for (const arg of execArgv) {
    const flag = arg.replaceAll("_", "-");
    // The last spelling wins, as V8 reads its flags in order.
    if (flag === "--no-memory-reducer" || flag === "--nomemory-reducer" || flag === "--memory-reducer=false")
      off = true;
    else if (flag === "--memory-reducer" || flag === "--memory-reducer=true") off = false;
  }
  return off;
}
