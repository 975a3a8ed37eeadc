/**
 * The close of a hibernating agent's database, with its fsyncs off the event loop.
 *
 * Closing the last connection to a WAL database checkpoints it: SQLite syncs the WAL, copies its frames into the
 * database file, syncs that, then deletes the WAL. Both fsyncs ran inside `close()` on the event loop, one to seven ms
 * each on a busy virtual disk, for every agent that left memory: in a reconnect storm of more devices than
 * maxActiveAgents, most connects paid for another agent's close (docs/benchmarks.md, "Session 21: connect path").
 *
 * Here the same steps run in the same order, and only the waits leave the event loop: the WAL is fsynced on libuv's
 * thread pool; then the checkpoint copies the frames on the event loop with the connection's `synchronous` at OFF for
 * that one call (its own two fsyncs are the ones done here instead; commits never run at OFF); the database file is
 * fsynced on the thread pool; only then does `close()` run, which finds nothing left to copy or sync and deletes the
 * WAL. So the WAL is durable before the database file is written, and the file is durable before the WAL goes, as
 * with SQLite's own close. Nobody writes through the handle meanwhile: its agent has left memory, and a wake of the
 * same agent first finishes the close (`settle`) before it opens the file again.
 *
 * Only under `locking_mode=EXCLUSIVE`, where no other connection can write the file between the steps. At most
 * `limit` handles wait at once (a few at a time in a storm; each keeps its page cache until closed); beyond it, or
 * when a step cannot be prepared, the handle closes at once as before. The file descriptors opened here for the
 * fsyncs are closed only after SQLite closed its own: closing any descriptor of a file drops every POSIX lock the
 * process holds on it, which would end the EXCLUSIVE lock another bridge on the same directory is kept out by. The
 * WAL's descriptor (SQLite locks only the database file) is closed last, on the thread pool: SQLite's close has
 * unlinked the WAL by then, so that close is what frees the file's blocks, a journaled write the loop need not wait
 * for.
 *
 * A failed fsync of the WAL leaves the rest to SQLite's own close (which syncs again, and keeps the WAL if it fails).
 * A failed fsync of the database file, after the copy, leaves the handle open for good: closing it would delete the
 * WAL while the copy may not be on disk. The WAL stays, holding every commit; the agent cannot wake until the bridge
 * restarts (`settle` answers BRIDGE_ERR_STORAGE), and the next process recovers the agent from the WAL.
 */
import fs from "node:fs";
import type { Logger } from "pino";
import { BridgeError } from "../errors/bridge-error.ts";
import { AGENT_ERRORS } from "./errors.ts";
import type { SqlRunner } from "./sql-runner.ts";
import type { StorageSettings } from "./storage.ts";

/** Most hibernated handles waiting for their fsyncs at once. */
export const DEFERRED_CLOSE_LIMIT = 32;

/** The file operations the close needs; tests put in their own to hold or fail an fsync. */
export interface CloseIo {
  /** A read-only descriptor of `file` (throws when it cannot be opened). */
  open(file: string): number;
  size(fd: number): number;
  fsync(fd: number, done: (err: Error | null) => void): void;
  fsyncSync(fd: number): void;
  close(fd: number): void;
  /** Closes `fd` on the thread pool, for a file no lock is held on; a failure is only logged. */
  closeInBackground(fd: number, failed: (err: Error) => void): void;
}

export const nodeCloseIo: CloseIo = {
  open: (file) => fs.openSync(file, "r"),
  size: (fd) => fs.fstatSync(fd).size,
  fsync: (fd, done) => fs.fsync(fd, done),
  fsyncSync: (fd) => fs.fsyncSync(fd),
  close: (fd) => fs.closeSync(fd),
  closeInBackground: (fd, failed) =>
    fs.close(fd, (err) => {
      if (err !== null) failed(err);
    }),
};

interface Waiting {
  readonly file: string;
  readonly sql: SqlRunner;
  readonly dbFd: number;
  readonly walFd: number;
  /**
   * A second descriptor of the database file, for `settle`'s fsync. Linux tells a writeback error once per open file
   * description: once the background fsync of `dbFd` got it (its callback may not have run yet), another fsync of
   * `dbFd` succeeds. Opened before the copy, this one still gets the error.
   */
  readonly settleFd: number;
  /** What it waits for: the WAL's fsync, the database file's fsync, or nothing more (that fsync failed). */
  phase: "wal" | "db" | "failed";
}

export class DeferredClose {
  readonly #waiting = new Map<string, Waiting>();
  readonly #settings: Pick<StorageSettings, "synchronous" | "lockingMode">;
  readonly #logger: Logger;
  readonly #io: CloseIo;
  readonly #limit: number;

  constructor(
    settings: Pick<StorageSettings, "synchronous" | "lockingMode">,
    logger: Logger,
    io: CloseIo = nodeCloseIo,
    limit = DEFERRED_CLOSE_LIMIT,
  ) {
    this.#settings = settings;
    this.#logger = logger;
    this.#io = io;
    this.#limit = limit;
  }

  /** Handles whose close has not finished. */
  get waiting(): number {
    return this.#waiting.size;
  }

  /** Closes `sql`, the handle of the agent database `file`: at once, or once its fsyncs ran off the event loop. */
  close(file: string, sql: SqlRunner): void {
    if (this.#settings.lockingMode !== "EXCLUSIVE" || this.#waiting.size >= this.#limit || this.#waiting.has(file)) {
      sql.close();
      return;
    }
    const fds: number[] = [];
    let empty = true;
    try {
      fds.push(this.#io.open(file));
      fds.push(this.#io.open(`${file}-wal`));
      empty = this.#io.size(fds[1]!) === 0;
      if (!empty) fds.push(this.#io.open(file));
    } catch {
      // No WAL (nothing was read or written), or no descriptor left: SQLite's own close, as before.
    }
    // An empty WAL has nothing to copy: closing it syncs nothing.
    if (fds.length < 3 || empty) {
      this.#closeNow(sql, fds);
      return;
    }
    const [dbFd, walFd, settleFd] = fds as [number, number, number];
    const w: Waiting = { file, sql, dbFd, walFd, settleFd, phase: "wal" };
    this.#waiting.set(file, w);
    this.#io.fsync(walFd, (err) => this.#guarded(w, () => this.#walSynced(w, err)));
  }

  /**
   * Finishes the close of `file` now, if one is waiting: before the file is opened again (a wake) or deleted (with
   * `discard`: a destroy, which closes even a handle whose fsync failed). Throws BRIDGE_ERR_STORAGE when the
   * database file could not be synced, now or earlier, and leaves that handle open (see the file's comment).
   */
  settle(file: string, discard = false): void {
    const w = this.#waiting.get(file);
    if (w === undefined) return;
    if (!discard) {
      if (w.phase === "failed") throw syncFault(file);
      if (w.phase === "db") {
        try {
          this.#io.fsyncSync(w.settleFd);
        } catch (err) {
          w.phase = "failed";
          throw syncFault(file, err);
        }
      }
    }
    this.#finish(w);
  }

  /** Finishes every waiting close (shutdown). A handle whose file could not be synced stays open, with its WAL. */
  settleAll(): void {
    for (const file of [...this.#waiting.keys()]) {
      try {
        this.settle(file);
      } catch (err) {
        this.#logger.error({ err, path: file }, "agent database left open: its file could not be synced");
      }
    }
  }

  #walSynced(w: Waiting, err: Error | null): void {
    if (err !== null) {
      this.#logger.warn({ err, path: w.file }, "fsync of an agent WAL failed; SQLite's close syncs it again");
      this.#finish(w);
      return;
    }
    const db = w.sql.db;
    let copied = false;
    try {
      // Its two fsyncs are this file's: the WAL's ran just now, the database file's runs next, both off the loop.
      db.exec("PRAGMA synchronous = OFF");
      const [result] = db.pragma("wal_checkpoint(PASSIVE)") as Array<{
        busy: number;
        log: number;
        checkpointed: number;
      }>;
      copied = result !== undefined && result.busy === 0 && result.checkpointed === result.log;
    } catch (checkpointErr) {
      this.#logger.warn({ err: checkpointErr, path: w.file }, "checkpoint of a hibernating agent failed");
    } finally {
      db.exec(`PRAGMA synchronous = ${this.#settings.synchronous}`);
    }
    if (!copied) {
      // What is left (frames not copied, the database file's sync) SQLite's close does, synced as before.
      this.#finish(w);
      return;
    }
    w.phase = "db";
    this.#io.fsync(w.dbFd, (syncErr) => this.#guarded(w, () => this.#dbSynced(w, syncErr)));
  }

  #dbSynced(w: Waiting, err: Error | null): void {
    if (err === null) {
      this.#finish(w);
      return;
    }
    w.phase = "failed";
    this.#logger.error(
      { err, path: w.file },
      "fsync of an agent database failed after its checkpoint: the handle stays open and the WAL is kept; " +
        "restart the bridge to recover the agent from it",
    );
  }

  /** Runs a step of `w` unless its close was finished meanwhile; a fault is logged, never thrown into libuv. */
  #guarded(w: Waiting, step: () => void): void {
    if (this.#waiting.get(w.file) !== w) return;
    try {
      step();
    } catch (err) {
      this.#logger.error({ err, path: w.file }, "closing a hibernated agent database failed");
    }
  }

  #finish(w: Waiting): void {
    this.#waiting.delete(w.file);
    this.#closeNow(w.sql, [w.dbFd, w.walFd, w.settleFd]);
  }

  /** SQLite's close first, then the descriptors opened here: the WAL's last (see the file's comment). */
  #closeNow(sql: SqlRunner, fds: number[]): void {
    try {
      sql.close();
    } finally {
      const [dbFd, walFd, settleFd] = fds;
      if (dbFd !== undefined) this.#io.close(dbFd);
      if (settleFd !== undefined) this.#io.close(settleFd);
      if (walFd !== undefined) {
        this.#io.closeInBackground(walFd, (err) => this.#logger.warn({ err }, "closing an agent WAL failed"));
      }
    }
  }
}

function syncFault(file: string, cause?: unknown): BridgeError {
  return new BridgeError(
    AGENT_ERRORS.STORAGE,
    "the agent database could not be synced to disk; its WAL is kept and the agent wakes after a restart",
    { path: file },
    cause === undefined ? undefined : { cause },
  );
}
