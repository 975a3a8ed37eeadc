/**
 * Holds a data directory's lock in a process of its own, for tests/app/data-dir-lock-holders.test.ts: takes the lock
 * of the directory named by its argument and prints `held`. Then, on a stdin line `release`, it releases the lock and
 * exits; on `exit`, it exits without releasing (the kernel lets the lock go with the process). Otherwise it holds the
 * lock until it is killed, or for a minute at most, so that a test that died leaves nothing behind for long.
 */
import readline from "node:readline";
import { acquireDataDirLock } from "../../../app/bridge/data-dir-lock.ts";

const dataDir = process.argv[2];
if (dataDir === undefined) throw new Error("usage: lock-holder.ts DATA_DIR");
const lock = acquireDataDirLock(dataDir);
process.stdout.write("held\n");
setTimeout(() => process.exit(0), 60_000);
// A holder started in the background of a shell reads /dev/null: its stdin ends at once and it keeps holding.
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (line === "release") lock.release();
  if (line === "release" || line === "exit") process.exit(0);
});
