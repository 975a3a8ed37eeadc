/**
 * One bridge per data directory. Two bridges on one directory would share `registry.db` and every agent database;
 * agent databases are opened with `locking_mode=EXCLUSIVE`, so the second bridge's agents would hit SQLITE_BUSY and
 * disconnect devices at random. The lock is taken before anything in the directory is opened and given back on stop.
 *
 * The lock is the kernel's: SQLite's POSIX lock on `<dataDir>/bridge.lock.db`, a database that holds nothing, kept by
 * one connection for its whole life (`locking_mode=EXCLUSIVE` and an exclusive transaction). The kernel drops it when
 * the owner's process ends, however it ends (a stop, a crash, SIGKILL, its container stopped), so there is nothing to
 * judge stale: no pid is looked at, a zombie owner (its files are closed when it exits) holds nothing, and an owner
 * in another pid namespace (another container on the same volume) is seen as the owner it is. Once it holds the lock,
 * the owner writes `bridge.lock`, who it is, for the refusal message and for operators
 * (app/bridge/lock-owner-record.ts).
 *
 * This rests on two rules:
 * - The lock database is never deleted, not even on release: a start that opened the file just before the unlink
 *   would lock the orphaned file while a later start creates a new one and locks that, and both would run.
 * - A POSIX lock belongs to a process, and closing any descriptor of the file drops all of that process's locks on it:
 *   nothing in a process that may hold the lock opens `bridge.lock.db` but through SQLite. SQLite keeps track of its
 *   own connections to one file, so a second bridge in the same process is refused as one in another process is.
 *
 * The `devices` CLI commands open only `registry.db` (WAL, shared) and never take this lock, so they keep working
 * while the bridge runs; only `devices rm --purge`, which removes agent databases, takes it while it works
 * (app/cli/devices-purge.ts).
 */
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { sqliteCode } from "../../agents/sqlite-code.ts";
import { BridgeError } from "../../errors/index.ts";
import {
  describeOwner,
  LOCK_FILE,
  type LockOwner,
  readOwnerRecord,
  removeOwnerRecord,
  writeOwnerRecord,
} from "./lock-owner-record.ts";

export { LOCK_FILE, type LockOwner } from "./lock-owner-record.ts";

/** Name of the lock database inside the data directory: the file the kernel lock is on. */
export const LOCK_DATABASE_FILE = "bridge.lock.db";

/** A held lock. */
export interface DataDirLock {
  /** Absolute path of the lock database. */
  readonly file: string;
  /** Absolute path of the owner record (`bridge.lock`). */
  readonly ownerFile: string;
  /** Removes the owner record if it is still ours and lets the lock go; idempotent, never throws. */
  release(): void;
}

export interface DataDirLockOptions {
  /** Wall-clock time in ms, for the record's `startedAt`. Default `Date.now`. */
  nowMs?: () => number;
  /** Waits `ms` between tries on a busy lock. Default: blocks the thread (the lock is taken synchronously). */
  pause?: (ms: number) => void;
}

/**
 * How often a start that finds the lock busy tries, and the most it pauses in between (ms, drawn at random). Starts
 * racing for a free lock can all find it busy at once: each holds SQLite's shared lock for a moment on its way to the
 * exclusive one, which each other's shared lock then denies. Without another try none of them would run; with it, a
 * lock that is really held is refused after a few milliseconds.
 */
const BUSY_ATTEMPTS = 4;
const MAX_BUSY_PAUSE_MS = 8;

const LOCKED = "BRIDGE_ERR_DATA_DIR_LOCKED";

/**
 * Takes the lock of `dataDir` (which must exist), or throws `BridgeError` `BRIDGE_ERR_DATA_DIR_LOCKED`: "data
 * directory D is in use by pid N on host H (...)" while another process holds it, or a message naming the lock
 * database when it cannot be used (not writable, not a SQLite file).
 *
 * @example
 * const lock = acquireDataDirLock(config.dataDir);
 * try { await run(); } finally { lock.release(); }
 */
export function acquireDataDirLock(dataDir: string, options: DataDirLockOptions = {}): DataDirLock {
  const nowMs = options.nowMs ?? Date.now;
  const file = path.resolve(dataDir, LOCK_DATABASE_FILE);
  const ownerFile = path.resolve(dataDir, LOCK_FILE);
  const db = takeKernelLock(dataDir, file, ownerFile, options.pause ?? blockThread);
  const owner: LockOwner = { pid: process.pid, startedAt: new Date(nowMs()).toISOString(), host: os.hostname() };
  const text = `${JSON.stringify(owner)}\n`;
  try {
    writeOwnerRecord(ownerFile, text);
  } catch (err) {
    db.close();
    // A directory the bridge cannot write in is no directory it can run on: refused now, not at its first write.
    throw new BridgeError(
      LOCKED,
      `cannot lock data directory ${dataDir}: cannot write the owner record ${ownerFile}: ${(err as Error).message}`,
      { dataDir, file, ownerFile },
      { cause: err },
    );
  }
  let released = false;
  return {
    file,
    ownerFile,
    release() {
      if (released) return;
      released = true;
      // Still holding the lock, so no other owner can have written its record meanwhile.
      removeOwnerRecord(ownerFile, text);
      try {
        db.close();
      } catch {
        // Closing cannot fail with nothing pending; were it to, the lock goes with the process.
      }
    },
  };
}

function takeKernelLock(
  dataDir: string,
  file: string,
  ownerFile: string,
  pause: (ms: number) => void,
): Database.Database {
  for (let attempt = 1; ; attempt++) {
    const db = tryKernelLock(dataDir, file);
    if (db !== undefined) return db;
    if (attempt === BUSY_ATTEMPTS) {
      const owner = readOwnerRecord(ownerFile);
      throw new BridgeError(LOCKED, `data directory ${dataDir} is in use by ${describeOwner(owner, ownerFile)}`, {
        dataDir,
        file,
        ownerFile,
        ...(owner?.pid === undefined ? {} : { pid: owner.pid }),
        ...(owner?.host === undefined ? {} : { host: owner.host }),
      });
    }
    pause(1 + Math.random() * (MAX_BUSY_PAUSE_MS - 1));
  }
}

/** The connection holding the lock, or undefined when another connection (of any process) holds it. */
function tryKernelLock(dataDir: string, file: string): Database.Database | undefined {
  let db: Database.Database;
  try {
    // busy_timeout 0: a held lock is reported at once, not waited for.
    db = new Database(file, { timeout: 0 });
  } catch (err) {
    throw cannotLock(dataDir, file, err);
  }
  try {
    // The first start writes the empty database's header here, with a normal commit that deletes its journal; under
    // EXCLUSIVE locking mode that journal would stay beside the file for as long as the lock is held.
    db.exec("BEGIN EXCLUSIVE; COMMIT");
    // From here the exclusive lock, once taken, is kept until the connection closes. Nothing is written any more.
    db.pragma("locking_mode = EXCLUSIVE");
    db.exec("BEGIN EXCLUSIVE; COMMIT");
    return db;
  } catch (err) {
    db.close();
    if (sqliteCode(err) === "SQLITE_BUSY") return undefined;
    throw cannotLock(dataDir, file, err);
  }
}

function cannotLock(dataDir: string, file: string, err: unknown): BridgeError {
  const code = sqliteCode(err);
  const reason = code === undefined ? (err as Error).message : `${(err as Error).message}, ${code}`;
  // A file SQLite cannot read is no lock anyone holds (a holder would have made this start find it busy first). It is
  // not replaced here: a start that opened it meanwhile would lock the old file while this one locks the new.
  let problem: string;
  if (code === "SQLITE_NOTADB" || code?.startsWith("SQLITE_CORRUPT")) {
    const remedy = "it holds no data: remove it";
    problem = `its lock database ${file} is not a SQLite database or is damaged (${reason}); ${remedy}`;
  } else if (
    code === undefined ||
    code === "SQLITE_CANTOPEN" ||
    code === "SQLITE_PERM" ||
    code.startsWith("SQLITE_READONLY")
  ) {
    const remedy = "the directory and that file must be writable";
    problem = `cannot open its lock database ${file} for writing (${reason}): ${remedy}`;
  } else problem = `cannot use its lock database ${file} (${reason})`;
  return new BridgeError(
    LOCKED,
    `cannot lock data directory ${dataDir}: ${problem}`,
    code === undefined ? { dataDir, file } : { dataDir, file, sqlite: code },
    { cause: err },
  );
}

function blockThread(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
