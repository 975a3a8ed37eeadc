/**
 * One bridge per data directory. Two bridges on one directory would share `registry.db` and every agent database;
 * agent databases are opened with `locking_mode=EXCLUSIVE`, so the second bridge's agents would hit SQLITE_BUSY and
 * disconnect devices at random. The lock is a file, `<dataDir>/bridge.lock`, holding the owner's pid; it is taken
 * before anything in the directory is opened and removed on stop.
 *
 * A bridge killed with SIGKILL leaves the file behind. The next start reads the pid: a pid that no longer runs, or
 * that now belongs to another program (its start time differs from the one recorded, which happens after a reboot or
 * a container restart), marks the lock stale and the new bridge takes it over. The `devices` CLI commands open only
 * `registry.db` (WAL, shared) and never take this lock, so they keep working while the bridge runs; only
 * `devices rm --purge`, which removes agent databases, takes it while it works (app/cli/devices-purge.ts).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { BridgeError } from "../../errors/index.ts";

/** Name of the lock file inside the data directory. */
export const LOCK_FILE = "bridge.lock";

/** What the lock file holds (JSON). */
export interface LockOwner {
  pid: number;
  /** ISO time the owner took the lock, for operators reading the file. */
  startedAt: string;
  /** The owner's process start time as the kernel reports it (`/proc/<pid>/stat` field 22); absent off Linux. */
  processStart?: string;
  /** The owner's host name, for operators reading the file (not checked: a re-created container gets a new one). */
  host: string;
}

/** A held lock. */
export interface DataDirLock {
  /** Absolute path of the lock file. */
  readonly file: string;
  /** Removes the lock file if it is still ours; idempotent, never throws. */
  release(): void;
}

/** Probes of the process table, injectable for tests. */
export interface DataDirLockOptions {
  /** This process's pid. Default `process.pid`. */
  pid?: number;
  /** Wall-clock time in ms, for `startedAt` and the age of an unreadable lock file. Default `Date.now`. */
  nowMs?: () => number;
  /** True when `pid` runs. Default: `process.kill(pid, 0)` (EPERM counts as running: another user's process). */
  isRunning?: (pid: number) => boolean;
  /** The kernel's start time of `pid`, or undefined when unknown. Default: read from `/proc`. */
  processStart?: (pid: number) => string | undefined;
}

/** Lock files this process holds, so that a second bridge in the same process is refused too. */
const heldHere = new Set<string>();

function defaultIsRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Field 22 of `/proc/<pid>/stat` (start time in clock ticks since boot); fields are counted after the `comm` field. */
function defaultProcessStart(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19];
  } catch {
    return undefined;
  }
}

function readOwner(file: string): LockOwner | undefined {
  try {
    const parsed: unknown = JSON.parse(fs.readFileSync(file, "utf8"));
    if (typeof parsed !== "object" || parsed === null) return undefined;
    const owner = parsed as Record<string, unknown>;
    if (!Number.isSafeInteger(owner.pid) || (owner.pid as number) <= 0) return undefined;
    return owner as unknown as LockOwner;
  } catch {
    return undefined;
  }
}

/**
 * Takes the lock of `dataDir` (which must exist), or throws `BridgeError` `BRIDGE_ERR_DATA_DIR_LOCKED`
 * ("data directory D is in use by pid N") when a running bridge holds it. A stale lock is taken over.
 *
 * @example
 * const lock = acquireDataDirLock(config.dataDir);
 * try { await run(); } finally { lock.release(); }
 */
export function acquireDataDirLock(dataDir: string, options: DataDirLockOptions = {}): DataDirLock {
  const pid = options.pid ?? process.pid;
  const isRunning = options.isRunning ?? defaultIsRunning;
  const processStart = options.processStart ?? defaultProcessStart;
  const nowMs = options.nowMs ?? Date.now;
  const file = path.resolve(dataDir, LOCK_FILE);
  const me: LockOwner = {
    pid,
    startedAt: new Date(nowMs()).toISOString(),
    host: os.hostname(),
  };
  const myStart = processStart(pid);
  if (myStart !== undefined) me.processStart = myStart;
  const text = `${JSON.stringify(me)}\n`;

  // The content is written to a private file first and linked into place: link(2) fails atomically when the lock
  // exists, and a reader never sees a half-written lock (as it could with open("wx") followed by a write).
  const temp = `${file}.${pid}.${process.hrtime.bigint()}.tmp`;
  const cannotCreate = (err: unknown) =>
    new BridgeError(
      "BRIDGE_ERR_DATA_DIR_LOCKED",
      `cannot create the lock file ${file}: ${(err as Error).message}`,
      { dataDir, file },
      { cause: err },
    );
  try {
    fs.writeFileSync(temp, text, { mode: 0o644 });
  } catch (err) {
    throw cannotCreate(err);
  }
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        place(temp, file, text);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw cannotCreate(err);
        const owner = readOwner(file);
        if (owner !== undefined && ownerIsAlive(owner, file, pid, isRunning, processStart)) {
          throw new BridgeError(
            "BRIDGE_ERR_DATA_DIR_LOCKED",
            `data directory ${dataDir} is in use by pid ${owner.pid}`,
            { dataDir, file, pid: owner.pid },
          );
        }
        // An unreadable lock may be one being written by a start on a file system without hard links (see place);
        // only an old one is taken as damaged.
        if (owner === undefined && isRecent(file, nowMs())) break;
        // Stale: take it over.
        fs.rmSync(file, { force: true });
        continue;
      }
      // Two starts taking over the same stale lock at once could both link; only the one whose content is in the
      // file holds it.
      if (fs.readFileSync(file, "utf8") !== text) continue;
      heldHere.add(file);
      return makeLock(file, text);
    }
    throw new BridgeError("BRIDGE_ERR_DATA_DIR_LOCKED", `data directory ${dataDir} is being locked by another start`, {
      dataDir,
      file,
    });
  } finally {
    fs.rmSync(temp, { force: true });
  }
}

/** How long an unreadable lock file is taken for one still being written, in ms. */
const UNREADABLE_GRACE_MS = 5000;

function isRecent(file: string, now: number): boolean {
  try {
    return now - fs.statSync(file).mtimeMs < UNREADABLE_GRACE_MS;
  } catch {
    return false; // gone meanwhile: the next attempt creates it
  }
}

/** Puts the lock in place; throws EEXIST when there is one. */
function place(temp: string, file: string, text: string): void {
  try {
    fs.linkSync(temp, file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "ENOSYS") throw err;
    // A file system without hard links (some network and FUSE mounts): an exclusive create, then the write.
    fs.writeFileSync(file, text, { flag: "wx", mode: 0o644 });
  }
}

function ownerIsAlive(
  owner: LockOwner,
  file: string,
  myPid: number,
  isRunning: (pid: number) => boolean,
  processStart: (pid: number) => string | undefined,
): boolean {
  // Our own pid in the file: held by another bridge of this process, or left by an earlier process that had the same
  // pid (containers start the bridge with the same small pid every time).
  if (owner.pid === myPid) return heldHere.has(file);
  if (!isRunning(owner.pid)) return false;
  if (owner.processStart === undefined) return true;
  const now = processStart(owner.pid);
  return now === undefined || now === owner.processStart;
}

function makeLock(file: string, text: string): DataDirLock {
  let released = false;
  return {
    file,
    release() {
      if (released) return;
      released = true;
      heldHere.delete(file);
      try {
        // Only our own lock is removed: a lock that was taken over meanwhile belongs to someone else.
        if (fs.readFileSync(file, "utf8") === text) fs.rmSync(file, { force: true });
      } catch {
        // Already gone: nothing to release.
      }
    },
  };
}
