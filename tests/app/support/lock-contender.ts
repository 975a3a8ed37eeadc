/**
 * One contender of the race in tests/app/data-dir-lock-holders.test.ts, a process of its own. For each stdin line
 * `take DIR AT` it waits until the wall-clock time AT (ms, fractions allowed; spinning, so that contenders told the
 * same AT try within a moment of each other), tries to take the lock of DIR and prints `won`, `refused`, or
 * `error MESSAGE` for any other failure. On `release` it releases what it holds and prints `released`.
 */
import readline from "node:readline";
import { acquireDataDirLock, type DataDirLock } from "../../../app/bridge/data-dir-lock.ts";
import { hasErrorCode } from "../../../errors/index.ts";

let held: DataDirLock | undefined;
setTimeout(() => process.exit(0), 60_000);
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const [command, dataDir, at] = line.split(" ");
  if (command === "release") {
    held?.release();
    held = undefined;
    process.stdout.write("released\n");
    return;
  }
  if (command !== "take" || dataDir === undefined) throw new Error(`unknown command: ${line}`);
  const start = Number(at);
  while (performance.timeOrigin + performance.now() < start) {
    // Spin: a timer would wake each contender up to a millisecond apart.
  }
  try {
    held = acquireDataDirLock(dataDir);
    process.stdout.write("won\n");
  } catch (err) {
    process.stdout.write(hasErrorCode(err, "BRIDGE_ERR_DATA_DIR_LOCKED") ? "refused\n" : `error ${String(err)}\n`);
  }
});
