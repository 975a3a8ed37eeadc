import assert from "node:assert/strict";
import fs from "node:fs";
import { after, describe, test } from "node:test";
import { type CloseIo, DeferredClose, nodeCloseIo } from "../../agents/deferred-close.ts";
import { capturingLogger } from "../support/capturing-logger.ts";
import { agentDatabases, closeSettings, HeldIo, walSize } from "./held-close-io.ts";
import { silentLogger, tempDir } from "./helpers.ts";

// SQLite's synchronous pragma reads back as a number: 0 OFF, 1 NORMAL.
const NORMAL = 1;

/**
 * HeldIo where the database file's writeback fails as Linux reports it: once to each descriptor open at the time, so
 * the held background fsync gets it (its callback still waiting to run) and another fsync of that descriptor does not.
 */
class WritebackErrorIo extends HeldIo {
  readonly #databaseFds = new Set<number>();
  readonly #unreported = new Set<number>();

  override open(file: string): number {
    const fd = super.open(file);
    if (!file.endsWith("-wal")) this.#databaseFds.add(fd);
    return fd;
  }
  /** The writeback of the file failed; `toldFd`, the held fsync's descriptor, already got the error. */
  failWriteback(toldFd: number): void {
    for (const fd of this.#databaseFds) if (fd !== toldFd) this.#unreported.add(fd);
  }
  override fsyncSync(fd: number): void {
    if (this.#unreported.delete(fd)) {
      this.steps.push("fsyncSync db: EIO");
      throw Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO" });
    }
    super.fsyncSync(fd);
  }
}

describe("closing hibernated agent databases with their fsyncs off the event loop", () => {
  const t = tempDir("deferred-close-");
  after(() => t.remove());
  const dbs = agentDatabases(t.dir);

  test("the WAL is synced, then copied, then the file synced, and only then does the handle close", async () => {
    const io = new HeldIo();
    const closer = new DeferredClose(closeSettings, silentLogger, io);
    const { file, sql } = dbs.create();
    io.sql = sql;
    closer.close(file, sql);
    assert.deepEqual(io.held, ["wal"], "first the WAL's fsync, off the event loop");
    assert.equal(sql.db.open, true);
    assert.equal(closer.waiting, 1);
    const before = fs.readFileSync(file);
    await io.answer();
    assert.deepEqual(io.held, ["db"], "then the file's fsync");
    assert.notDeepEqual(fs.readFileSync(file), before, "the checkpoint copied the WAL into the file");
    assert.ok(walSize(file) > 0, "the WAL stays until the file is synced");
    assert.equal(sql.db.pragma("synchronous", { simple: true }), NORMAL, "the handle is back at its level");
    assert.equal(sql.db.open, true);
    await io.answer();
    assert.equal(sql.db.open, false);
    assert.equal(walSize(file), -1, "SQLite's close deleted the WAL");
    assert.equal(closer.waiting, 0);
    // Its own descriptors (two of the file) closed after SQLite's handle, the WAL's off the loop.
    assert.deepEqual(io.steps, ["fsync wal", "fsync db", "close db", "close db", "close wal in the background"]);
    assert.equal(dbs.rows(file), 20);
  });

  test("a wake of the same agent finishes a waiting close at once, and the late fsync changes nothing", async () => {
    const io = new HeldIo();
    const closer = new DeferredClose(closeSettings, silentLogger, io);
    // Waiting for the WAL's fsync: SQLite's own close, synced as ever.
    const first = dbs.create();
    io.sql = first.sql;
    closer.close(first.file, first.sql);
    closer.settle(first.file);
    assert.equal(first.sql.db.open, false);
    assert.equal(walSize(first.file), -1);
    await io.answer();
    assert.deepEqual(io.steps, ["fsync wal", "close db", "close db", "close wal in the background"]);
    assert.equal(dbs.rows(first.file), 20);
    // Waiting for the file's fsync: synced on the spot before the close deletes the WAL.
    io.steps.length = 0;
    const second = dbs.create();
    io.sql = second.sql;
    closer.close(second.file, second.sql);
    await io.answer();
    closer.settle(second.file);
    // The descriptor of the queued fsync stays open until that fsync returned and the woken handle closed
    // (deferred-close-descriptors.test.ts); here a shutdown comes next.
    assert.deepEqual(io.steps, ["fsync wal", "fsync db", "fsyncSync db", "close db", "close wal in the background"]);
    await io.answer();
    assert.equal(closer.waiting, 0);
    closer.settleAll();
    assert.equal(io.steps.at(-1), "close db");
    assert.equal(dbs.rows(second.file), 20);
  });

  test("a failed fsync of the WAL leaves the close to SQLite", async () => {
    const io = new HeldIo();
    const logger = capturingLogger("warn");
    const closer = new DeferredClose(closeSettings, logger.logger, io);
    const { file, sql } = dbs.create();
    closer.close(file, sql);
    await io.answer(new Error("EIO"));
    assert.equal(sql.db.open, false);
    assert.equal(closer.waiting, 0);
    assert.match(logger.lines.map((l) => String(l.msg)).join("\n"), /fsync of an agent WAL failed/);
    assert.equal(dbs.rows(file), 20);
  });

  test("a failed fsync of the file after the copy keeps the handle and its WAL, and a wake is refused", async () => {
    const io = new HeldIo();
    const logger = capturingLogger("error");
    const closer = new DeferredClose(closeSettings, logger.logger, io);
    const { file, sql } = dbs.create();
    closer.close(file, sql);
    await io.answer();
    await io.answer(new Error("EIO"));
    assert.equal(sql.db.open, true, "closing it would delete a WAL whose copy may not be on disk");
    assert.ok(walSize(file) > 0);
    assert.throws(() => closer.settle(file), { code: "BRIDGE_ERR_STORAGE" });
    closer.settleAll();
    assert.equal(sql.db.open, true, "a shutdown leaves it too");
    assert.match(logger.lines.map((l) => String(l.msg)).join("\n"), /fsync of an agent database failed/);
    // A destroy deletes the files anyway.
    closer.settle(file, true);
    assert.equal(sql.db.open, false);
    assert.equal(closer.waiting, 0);
  });

  test("a wake while the failed fsync of the file awaits its callback is refused, not told it synced", async () => {
    const io = new WritebackErrorIo();
    const logger = capturingLogger("error");
    const closer = new DeferredClose(closeSettings, logger.logger, io);
    const { file, sql } = dbs.create();
    closer.close(file, sql);
    await io.answer();
    assert.deepEqual(io.held, ["db"]);
    // The thread pool's fsync of the file failed; its callback has not run when the agent wakes.
    io.failWriteback(io.heldFd);
    assert.throws(() => closer.settle(file), { code: "BRIDGE_ERR_STORAGE" });
    assert.equal(sql.db.open, true, "closing it would delete a WAL whose copy may not be on disk");
    assert.ok(walSize(file) > 0);
    await io.answer(new Error("EIO"));
    assert.equal(sql.db.open, true);
    closer.settle(file, true);
    assert.equal(closer.waiting, 0);
  });

  test("a fault while preparing the steps closes the handle at once, and the descriptors it opened", () => {
    const io = new HeldIo();
    const opened: number[] = [];
    const faulty: CloseIo = {
      ...nodeCloseIo,
      open: (file) => {
        const fd = io.open(file);
        opened.push(fd);
        return fd;
      },
      size: () => {
        throw new Error("EIO");
      },
      close: (fd) => io.close(fd),
      closeInBackground: (fd, failed) => io.closeInBackground(fd, failed),
    };
    const closer = new DeferredClose(closeSettings, silentLogger, faulty);
    const { file, sql } = dbs.create();
    io.sql = sql;
    closer.close(file, sql);
    assert.equal(sql.db.open, false);
    assert.equal(closer.waiting, 0);
    assert.equal(opened.length, 2);
    assert.deepEqual(io.steps, ["close db", "close wal in the background"]);
    assert.equal(dbs.rows(file), 20);
  });

  test("NORMAL locking, a full queue, a handle whose WAL is empty and a shutdown close at once", async () => {
    const io = new HeldIo();
    const closer = new DeferredClose({ ...closeSettings, lockingMode: "NORMAL" }, silentLogger, io);
    const normal = dbs.create("NORMAL");
    closer.close(normal.file, normal.sql);
    assert.equal(normal.sql.db.open, false, "another connection could write between the steps");

    const limited = new DeferredClose(closeSettings, silentLogger, io, 1);
    const a = dbs.create();
    const b = dbs.create();
    limited.close(a.file, a.sql);
    limited.close(b.file, b.sql);
    assert.equal(a.sql.db.open, true);
    assert.equal(b.sql.db.open, false, "beyond the limit");

    const empty = dbs.create();
    empty.sql.close();
    const reopened = dbs.wake(empty.file);
    limited.settleAll();
    limited.close(empty.file, reopened);
    assert.equal(reopened.db.open, false, "nothing to copy, nothing to sync");
    assert.equal(a.sql.db.open, false, "settleAll closed the waiting one");
    assert.deepEqual(io.held, ["wal"], "its fsync is answered later and ignored");
    await io.answer();
    assert.equal(dbs.rows(a.file), 20);
  });
});
