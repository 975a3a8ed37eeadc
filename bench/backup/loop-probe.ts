/**
 * Preloaded into the bridge under test (`node --import tsx --import ./bench/backup/loop-probe.ts bin/...`): its
 * event-loop stalls, measured more finely than by the bridge's own metric, whose histogram samples every 100 ms and
 * so misses most stalls shorter than that. Appends each report (stalls.ts) to the file named by
 * BENCH_LOOP_PROBE_FILE; does nothing without that variable.
 */
import fs from "node:fs";
import { stallLine, startStallProbe } from "./stalls.ts";

const file = process.env.BENCH_LOOP_PROBE_FILE;
if (file !== undefined && file !== "") {
  startStallProbe((report) => fs.appendFileSync(file, stallLine(report)));
}
