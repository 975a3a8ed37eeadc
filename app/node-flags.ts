/**
 * Whether V8's memory reducer runs in this process, for the bridge's started log line (`memoryReducer: on|off`).
 *
 * `npm start` runs node on V8's defaults, memory reducer included. The reducer runs up to three memory-reducing full
 * GCs once a process's allocation rate drops, which a bridge of quiet devices does again and again; they give the
 * heap back to the system, and can throw away optimized code of the message path. Turning it off
 * (`node --no-memory-reducer bin/agent-bridge.js start`) was `npm start`'s default for one session; measured both ways
 * it is a trade, and the memory side decided it. Gain: after the engine benchmark's bursts, one device asking once a
 * second got its first answer chunk 0.25-0.31 ms sooner per pair in two of three full runs (0.06 in the third; 0.00
 * and 0.07 in two probes after a smaller burst), on answers that take about 300 ms. Cost: 10,000 idle devices kept
 * 1.4-2.3 KiB more RSS each (20.3-20.4 against 18.9-19.0 KiB after a full GC, over the fleet's 20 KB line), a quiet
 * bridge about 30 MiB more (docs/benchmarks.md, "Session 16"). An operator who wants that latency more than that
 * memory passes the flag: V8 reads it only on node's command line (NODE_OPTIONS refuses it, and
 * `v8.setFlagsFromString` comes too late once the heap exists), and the started line says which applies.
 */

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
