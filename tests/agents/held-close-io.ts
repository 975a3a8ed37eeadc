/**
 * File operations for tests of agents/deferred-close.ts: real ones, except that each asynchronous fsync waits until
 * the test answers it, every step is written to `steps` as it happens, and every misuse of a descriptor is written to
 * `misuses`: a close of one it did not open or closed already, a close while an fsync of it is still queued, and an
 * fsync that runs on one closed meanwhile (its number may be another file's by then).
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { type CloseIo, nodeCloseIo } from "../../agents/deferred-close.ts";
import { SqlRunner } from "../../agents/sql-runner.ts";
import { openAgentDatabase, type StorageSettings } from "../../agents/storage.ts";

export const closeSettings: StorageSettings = {
  maxDatabaseBytes: 1024 ** 3,
  synchronous: "NORMAL",
  lockingMode: "EXCLUSIVE",
  cacheSizeKiB: 256,
  pageSizeBytes: 1024,
};

export class HeldIo implements CloseIo {
  readonly steps: string[] = [];
  readonly misuses: string[] = [];
  readonly #names = new Map<number, string>();
  /** Descriptors opened here and not closed yet. */
  readonly openFds = new Set<number>();
  readonly #held: Array<{ name: string; fd: number; done: (err: Error | null) => void }> = [];
  /** The SQLite handle of the file now: a descriptor of the file closed while it is open is noted in `steps`. */
  sql: SqlRunner | null = null;

  open(file: string): number {
    const fd = nodeCloseIo.open(file);
    this.#names.set(fd, file.endsWith("-wal") ? "wal" : "db");
    this.openFds.add(fd);
    return fd;
  }
  size(fd: number): number {
    return nodeCloseIo.size(fd);
  }
  fsync(fd: number, done: (err: Error | null) => void): void {
    const name = this.#names.get(fd) ?? "?";
    this.steps.push(`fsync ${name}`);
    this.#held.push({ name, fd, done });
  }
  fsyncSync(fd: number): void {
    this.steps.push(`fsyncSync ${this.#names.get(fd)}`);
    nodeCloseIo.fsyncSync(fd);
  }
  close(fd: number): void {
    this.#closing(fd);
    this.steps.push(`close ${this.#names.get(fd)}${this.sql?.db.open ? " while SQLite's handle is open" : ""}`);
    nodeCloseIo.close(fd);
  }
  closeInBackground(fd: number, done: (err: Error | null) => void): void {
    this.#closing(fd);
    this.steps.push(`close ${this.#names.get(fd)} in the background`);
    nodeCloseIo.closeInBackground(fd, done);
  }
  #closing(fd: number): void {
    if (!this.openFds.delete(fd)) this.misuses.push(`close of ${this.#names.get(fd) ?? "a descriptor"} not open here`);
    if (this.#held.some((h) => h.fd === fd)) this.misuses.push(`close of ${this.#names.get(fd)} while its fsync waits`);
  }
  /** The descriptor of the oldest held fsync. */
  get heldFd(): number {
    const h = this.#held[0];
    assert.ok(h, "an fsync is held");
    return h.fd;
  }
  get held(): string[] {
    return this.#held.map((h) => h.name);
  }
  /** Answers the oldest held fsync (with `err` to fail it) and waits for its callback. */
  async answer(err: Error | null = null): Promise<void> {
    const h = this.#held.shift();
    assert.ok(h, "an fsync is held");
    if (!this.openFds.has(h.fd)) this.misuses.push(`fsync of ${h.name} ran after it was closed`);
    await new Promise<void>((resolve) => {
      const done = (e: Error | null) => {
        h.done(e);
        resolve();
      };
      if (err === null) nodeCloseIo.fsync(h.fd, done);
      else done(err);
    });
  }
}

/** Agent databases in `dir` with committed rows still in their WAL, as a hibernating agent leaves them. */
export function agentDatabases(dir: string) {
  let n = 0;
  return {
    create(lockingMode: StorageSettings["lockingMode"] = "EXCLUSIVE"): { file: string; sql: SqlRunner } {
      const file = path.join(dir, `a${n++}.db`);
      const sql = open(file, { ...closeSettings, lockingMode });
      sql.db.exec("CREATE TABLE t (v TEXT)");
      for (let i = 0; i < 20; i++) sql.db.prepare("INSERT INTO t (v) VALUES (?)").run(`row ${i}`);
      return { file, sql };
    },
    /** The file opened again, as a wake opens it: its first read takes the lock. */
    wake(file: string): SqlRunner {
      const sql = open(file, closeSettings);
      sql.db.prepare("SELECT count(*) FROM t").get();
      return sql;
    },
    rows(file: string): number {
      const sql = open(file, closeSettings);
      try {
        return (sql.db.prepare("SELECT count(*) AS n FROM t").get() as { n: number }).n;
      } finally {
        sql.close();
      }
    },
  };
}

/** The size of `file`'s WAL, -1 when it has none. */
export function walSize(file: string): number {
  return fs.existsSync(`${file}-wal`) ? fs.statSync(`${file}-wal`).size : -1;
}

function open(file: string, settings: StorageSettings): SqlRunner {
  return new SqlRunner(openAgentDatabase(file, settings));
}
