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
 * process holds on it, which would end the EXCLUSIVE lock another bridge on the same directory is kept out by. Nor is
 * one closed while an fsync of it still waits on the thread pool (a wake or a destroy finished the close first): its
 * number would go to the next open, and the fsync to that file. The WAL's then closes when its fsync returns, the
 * database file's once also no handle of the file is open (leftover-descriptors.ts); `idle` says when none is left.
 * The WAL's descriptor (SQLite locks only the database file) is closed last, on the thread pool: SQLite's close has
 * unlinked the WAL by then, so that close is what frees the file's blocks, a journaled write the loop need not wait
 * for.
 *
 * A failed fsync of the WAL (or one that cannot be queued) leaves the rest to SQLite's own close (which syncs again,
 * and keeps the WAL if it fails). A failed fsync of the database file, after the copy, leaves the handle open for
 * good: closing it would delete the WAL while the copy may not be on disk. The WAL stays, holding every commit; the
 * agent cannot wake until the bridge restarts (`settle` answers BRIDGE_ERR_STORAGE), and the next process recovers
 * the agent from the WAL. When SQLite will not put the connection's `synchronous` back from OFF after the checkpoint,
 * a complete copy goes on (once the file is synced, the close copies and syncs nothing, at any level); after an
 * incomplete one the handle stays open with its WAL, since SQLite's close would copy the rest unsynced and then
 * delete the WAL: each wake tries the level again (answered BRIDGE_ERR_STORAGE until it works), then closes it.
 */
import fs from "node:fs";
import type { Logger } from "pino";
import { BridgeError } from "../errors/bridge-error.ts";
import { AGENT_ERRORS } from "./errors.ts";
import { LeftoverDescriptors } from "./leftover-descriptors.ts";
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
  /** Closes `fd` on the thread pool, for a file no lock is held on. */
  closeInBackground(fd: number, done: (err: Error | null) => void): void;
}

export const nodeCloseIo: CloseIo = {
  open: (file) => fs.openSync(file, "r"),
  size: (fd) => fs.fstatSync(fd).size,
  fsync: (fd, done) => fs.fsync(fd, done),
  fsyncSync: (fd) => fs.fsyncSync(fd),
  close: (fd) => fs.closeSync(fd),
  closeInBackground: (fd, done) => fs.close(fd, done),
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
  /**
   * What it waits for: the WAL's fsync, the database file's fsync, nothing more (that fsync failed), or a wake that
   * puts the connection's `synchronous` back (it could not be, and the copy is not complete: see #walSynced).
   */
  phase: "wal" | "db" | "failed" | "level";
  /** The descriptor whose fsync is queued on the thread pool, if any: it stays open until that fsync returned. */
  syncing: number | null;
}

export class DeferredClose {
  readonly #waiting = new Map<string, Waiting>();
  readonly #settings: Pick<StorageSettings, "synchronous" | "lockingMode">;
  readonly #logger: Logger;
  readonly #io: CloseIo;
  readonly #limit: number;
  readonly #leftovers = new LeftoverDescriptors((fd) => this.#closeFd(fd));
  /** Fsyncs and closes of this closer queued on the thread pool. */
  #queued = 0;
  #idleWaiters: Array<() => void> = [];

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
      this.#closeNow(file, sql, [], undefined);
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
      const [dbFd, walFd, settleFd] = fds;
      this.#closeNow(
        file,
        sql,
        [dbFd, settleFd].filter((fd) => fd !== undefined),
        walFd,
      );
      return;
    }
    const [dbFd, walFd, settleFd] = fds as [number, number, number];
    const w: Waiting = { file, sql, dbFd, walFd, settleFd, phase: "wal", syncing: null };
    this.#waiting.set(file, w);
    this.#fsyncInBackground(w, walFd, (err) => this.#walSynced(w, err));
  }

  /**
   * Finishes the close of `file` now, if one is waiting: before the file is opened again (a wake) or deleted (with
   * `discard`: a destroy, which closes even a handle whose fsync failed). Throws BRIDGE_ERR_STORAGE when the
   * database file could not be synced, now or earlier, or the connection's `synchronous` cannot be put back, and
   * leaves that handle open (see the file's comment).
   */
  settle(file: string, discard = false): void {
    const w = this.#waiting.get(file);
    if (w !== undefined) {
      if (!discard) this.#readyToClose(w);
      this.#finish(w);
    }
    // Descriptors earlier closes of the file left (leftover-descriptors.ts) wait while the wake's handle is open.
    if (discard) this.#leftovers.handleClosed(file);
    else this.#leftovers.handleOpening(file);
  }

  /**
   * A handle of `file` has closed (this closer's own, or one opened outside its agent's cell: a backup's copy of a
   * hibernated agent, after `settle`): the descriptors earlier closes left wait for no handle of the file any more.
   */
  handleClosed(file: string): void {
    // A handle of the file still waiting (its sync failed) keeps its lock: nothing of the file is closed under it.
    if (!this.#waiting.has(file)) this.#leftovers.handleClosed(file);
  }

  /**
   * Finishes every waiting close (shutdown). A handle whose file could not be synced, or whose `synchronous` cannot
   * be put back, stays open, with its WAL. Descriptors whose fsync is still queued close once it returned (`idle`).
   */
  settleAll(): void {
    for (const file of [...this.#waiting.keys()]) {
      try {
        this.settle(file);
      } catch (err) {
        this.#logger.error({ err, path: file }, "agent database left open with its WAL: it could not be closed safely");
      }
    }
    for (const file of this.#leftovers.files) this.handleClosed(file);
  }

  /** Resolves once no fsync or close of this closer is queued on the thread pool (a shutdown's last step). */
  idle(): Promise<void> {
    if (this.#queued === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Throws, leaving `w` open, unless closing it now loses nothing (settle of a wake). */
  #readyToClose(w: Waiting): void {
    if (w.phase === "failed") throw storageFault(w.file, SYNC_FAILED);
    if (w.phase === "level") {
      if (!this.#restoreLevel(w)) throw storageFault(w.file, LEVEL_NOT_RESTORED);
      return;
    }
    if (w.phase === "db") {
      try {
        this.#io.fsyncSync(w.settleFd);
      } catch (err) {
        w.phase = "failed";
        throw storageFault(w.file, SYNC_FAILED, err);
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
    }
    const restored = this.#restoreLevel(w);
    if (copied) {
      // Every frame is in the file: once it is synced, the close has nothing left to copy or sync, at any level.
      w.phase = "db";
      this.#fsyncInBackground(w, w.dbFd, (syncErr) => this.#dbSynced(w, syncErr));
      return;
    }
    if (!restored) {
      // At OFF, SQLite's close would copy the rest unsynced and then delete the WAL: the handle stays open, WAL and
      // all, until a wake puts the level back (settle) or a destroy discards it.
      w.phase = "level";
      return;
    }
    // What is left (frames not copied, the database file's sync) SQLite's close does, synced as before.
    this.#finish(w);
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

  /** Puts the connection's `synchronous` back from OFF; false (logged) when SQLite refused. */
  #restoreLevel(w: Waiting): boolean {
    try {
      w.sql.db.exec(`PRAGMA synchronous = ${this.#settings.synchronous}`);
      return true;
    } catch (err) {
      this.#logger.error({ err, path: w.file }, "the synchronous level of a hibernating agent could not be restored");
      return false;
    }
  }

  /**
   * Fsyncs `fd` of `w` on the thread pool, then runs `then` unless the close finished meanwhile; a fault is logged,
   * never thrown into libuv. `fd` stays open until the fsync returned (see leftover-descriptors.ts).
   */
  #fsyncInBackground(w: Waiting, fd: number, then: (err: Error | null) => void): void {
    w.syncing = fd;
    this.#queued++;
    const returned = (err: Error | null) => {
      w.syncing = null;
      try {
        if (this.#waiting.get(w.file) !== w) this.#release(w, fd);
        else then(err);
      } catch (stepErr) {
        this.#logger.error({ err: stepErr, path: w.file }, "closing a hibernated agent database failed");
      } finally {
        this.#dequeued();
      }
    };
    try {
      this.#io.fsync(fd, returned);
    } catch (err) {
      // Never queued: the step goes on as after a failed fsync.
      returned(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** The fsync of `fd` returned after `w`'s close finished: the descriptor that close left to it goes now. */
  #release(w: Waiting, fd: number): void {
    if (fd === w.walFd) this.#closeInBackground(fd);
    else this.#leftovers.fsyncReturned(w.file, fd);
  }

  #finish(w: Waiting): void {
    this.#waiting.delete(w.file);
    const notSyncing = (fd: number) => fd !== w.syncing;
    this.#closeNow(w.file, w.sql, [w.dbFd, w.settleFd].filter(notSyncing), notSyncing(w.walFd) ? w.walFd : undefined);
    // The WAL's descriptor closes when its fsync returns (#release); the file's waits for more
    // (leftover-descriptors.ts).
    if (w.syncing === w.dbFd) this.#leftovers.add(w.file, w.dbFd);
  }

  /**
   * SQLite's close first, then the descriptors opened here: those of the file (with what earlier closes of it left,
   * once no handle of it is open), then the WAL's, on the thread pool (see the file's comment).
   */
  #closeNow(file: string, sql: SqlRunner, dbFds: number[], walFd: number | undefined): void {
    try {
      sql.close();
    } finally {
      for (const fd of dbFds) this.#closeFd(fd);
      this.handleClosed(file);
      if (walFd !== undefined) this.#closeInBackground(walFd);
    }
  }

  /** Closes `fd` once: a failure is logged, as the descriptor is released anyway and never to be closed again. */
  #closeFd(fd: number): void {
    try {
      this.#io.close(fd);
    } catch (err) {
      this.#logger.warn({ err }, "closing a descriptor of an agent database failed");
    }
  }

  #closeInBackground(fd: number): void {
    this.#queued++;
    const done = (err: Error | null) => {
      if (err !== null) this.#logger.warn({ err }, "closing an agent WAL failed");
      this.#dequeued();
    };
    try {
      this.#io.closeInBackground(fd, done);
    } catch (err) {
      done(err instanceof Error ? err : new Error(String(err)));
    }
  }

  #dequeued(): void {
    this.#queued--;
    if (this.#queued > 0) return;
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }
}

const SYNC_FAILED =
  "the agent database could not be synced to disk; its WAL is kept and the agent wakes after a restart";
const LEVEL_NOT_RESTORED =
  "the agent database could not be closed safely (its synchronous level could not be restored); its WAL is kept " +
  "and the agent's next wake tries again";

function storageFault(file: string, message: string, cause?: unknown): BridgeError {
  return new BridgeError(AGENT_ERRORS.STORAGE, message, { path: file }, cause === undefined ? undefined : { cause });
}
