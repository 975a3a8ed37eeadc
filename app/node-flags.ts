/**
 * The node flags the bridge process runs with: `npm start` and `npm run demo` pass them, and a service runs
 * `node --no-memory-reducer bin/agent-bridge.js start`. They are V8 options, which take effect only on node's command
 * line: NODE_OPTIONS refuses them, and `v8.setFlagsFromString` comes too late once the heap exists.
 *
 * `--no-memory-reducer`: V8's memory reducer runs up to three memory-reducing full GCs once a process's allocation
 * rate drops (8 s after a full GC). A bridge whose devices are quiet, the common case at the edge, drops there again
 * and again. Those GCs drop every hidden class no live object holds (an ordinary full GC keeps them for two more), and
 * optimized code that checks one is thrown away, so after every quiet spell a device's message runs the broker, agent
 * and engine-client path in baseline code until thousands of messages optimize it again; they also shrink the young
 * generation, whose pages each message then faults in afresh. Measured on one device asking after 0.7 s pauses,
 * after a 64-device burst: 0.41-0.61 ms added to the first chunk with the flag against 0.78-1.26 ms without, and no
 * page fault per question instead of about 50 (docs/benchmarks.md, "Session 15"). What it costs: the heap keeps the
 * size a burst gave it instead of shrinking when the bridge goes quiet (RSS about 90 MiB higher after 256 devices
 * asked at once; ordinary GCs still run and reuse it). An operator short of memory runs node without the flag.
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
