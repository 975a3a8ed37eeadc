import assert from "node:assert/strict";
import fs from "node:fs";
import { after, describe, test } from "node:test";
import { DeferredClose } from "../../agents/deferred-close.ts";
import { capturingLogger } from "../support/capturing-logger.ts";
import { silentLogger, tempDir } from "./helpers.ts";
import { agentDatabases, closeSettings, HeldIo } from "./held-close-io.ts";

// A descriptor whose fsync is queued on the thread pool must stay open until that fsync returned: closed earlier, its
// number goes to the next open (the wake's SQLite open of the same file, as a rule) and the fsync runs on that file's
// descriptor instead. A database file's must not close while a SQLite handle of the file is open either: closing any
// descriptor of a file drops every POSIX lock the process holds on it.

/** HeldIo whose first close of a descriptor fails after releasing it, as close(2) does on Linux. */
class FailingCloseIo extends HeldIo {
  #failed = false;
  override close(fd: number): void {
    super.close(fd);
    if (this.#failed) return;
    this.#failed = true;
    throw Object.assign(new Error("EIO: i/o error, close"), { code: "EIO" });
  }
}

/** HeldIo whose fsync throws instead of queueing. */
class ThrowingFsyncIo extends HeldIo {
  override fsync(): void {
    throw new Error("EBADF: bad file descriptor, fsync");
  }
}

describe("a deferred close's descriptors are its own until its fsyncs returned", () => {
  const t = tempDir("deferred-close-fds-");
  after(() => t.remove());
  const dbs = agentDatabases(t.dir);
  const walExists = (file: string) => fs.existsSync(`${file}-wal`);

  test("a wake while the WAL's fsync waits closes the WAL's descriptor only once that fsync returned", async () => {
    const io = new HeldIo();
    const closer = new DeferredClose(closeSettings, silentLogger, io);
    const { file, sql } = dbs.create();
    closer.close(file, sql);
    closer.settle(file);
    const woken = dbs.wake(file);
    io.sql = woken;
    assert.deepEqual(io.misuses, []);
    assert.equal(io.openFds.size, 1, "the WAL's descriptor waits for its fsync");
    await io.answer();
    await closer.idle();
    assert.deepEqual(io.misuses, []);
    assert.equal(io.openFds.size, 0);
    woken.db.prepare("INSERT INTO t (v) VALUES ('after the wake')").run();
    closer.close(file, woken);
    await io.answer();
    await io.answer();
    await closer.idle();
    assert.deepEqual(io.misuses, []);
    assert.equal(io.openFds.size, 0);
    assert.equal(dbs.rows(file), 21);
  });

  test("a wake while the file's fsync waits keeps its descriptor until that returned and the wake closed", async () => {
    const io = new HeldIo();
    const closer = new DeferredClose(closeSettings, silentLogger, io);
    const { file, sql } = dbs.create();
    closer.close(file, sql);
    await io.answer();
    assert.deepEqual(io.held, ["db"]);
    // The wake: synced on the spot, closed, opened again while the background fsync still waits for a thread.
    closer.settle(file);
    assert.equal(walExists(file), false, "closed, with its WAL deleted");
    const woken = dbs.wake(file);
    io.sql = woken;
    assert.deepEqual(io.misuses, []);
    await io.answer();
    assert.deepEqual(io.misuses, []);
    assert.ok(
      io.steps.every((s) => !s.includes("while SQLite's handle is open")),
      "closing it now would drop the woken handle's lock",
    );
    assert.equal(io.openFds.size, 1, "the file's descriptor waits for the woken handle to close");
    // The woken agent writes and hibernates again: once its handle closed, the descriptor left over goes too.
    woken.db.prepare("INSERT INTO t (v) VALUES ('after the wake')").run();
    closer.close(file, woken);
    await io.answer();
    await io.answer();
    await closer.idle();
    assert.deepEqual(io.misuses, []);
    assert.ok(io.steps.every((s) => !s.includes("while SQLite's handle is open")));
    assert.equal(io.openFds.size, 0, "every descriptor opened was closed");
    assert.equal(dbs.rows(file), 21);
  });

  test("a destroy while the file's fsync waits closes that descriptor when the fsync returns", async () => {
    const io = new HeldIo();
    const closer = new DeferredClose(closeSettings, silentLogger, io);
    const { file, sql } = dbs.create();
    closer.close(file, sql);
    await io.answer();
    closer.settle(file, true);
    for (const f of [file, `${file}-wal`]) fs.rmSync(f, { force: true });
    assert.deepEqual(io.misuses, []);
    await io.answer();
    await closer.idle();
    assert.deepEqual(io.misuses, []);
    assert.equal(io.openFds.size, 0);
  });

  test("a shutdown while fsyncs wait is idle only once they returned and their descriptors closed", async () => {
    const io = new HeldIo();
    const closer = new DeferredClose(closeSettings, silentLogger, io);
    const a = dbs.create();
    const b = dbs.create();
    closer.close(a.file, a.sql);
    closer.close(b.file, b.sql);
    await io.answer();
    assert.deepEqual(io.held, ["wal", "db"]);
    closer.settleAll();
    assert.equal(closer.waiting, 0);
    assert.deepEqual(io.misuses, []);
    let idle = false;
    const whenIdle = closer.idle().then(() => {
      idle = true;
    });
    await io.answer();
    await io.answer();
    await whenIdle;
    assert.equal(idle, true);
    assert.deepEqual(io.misuses, []);
    assert.equal(io.openFds.size, 0);
    assert.equal(dbs.rows(a.file), 20);
    assert.equal(dbs.rows(b.file), 20);
  });

  test("a descriptor whose close fails neither reaches the wake nor keeps the others open", async () => {
    const io = new FailingCloseIo();
    const logger = capturingLogger("warn");
    const closer = new DeferredClose(closeSettings, logger.logger, io);
    const { file, sql } = dbs.create();
    closer.close(file, sql);
    closer.settle(file);
    assert.equal(sql.db.open, false);
    await io.answer();
    await closer.idle();
    assert.equal(io.openFds.size, 0, "each closed once");
    assert.deepEqual(io.misuses, []);
    assert.match(logger.lines.map((l) => String(l.msg)).join("\n"), /closing a descriptor of an agent database failed/);
    assert.equal(dbs.rows(file), 20);
  });

  test("an fsync that cannot be queued leaves the close to SQLite, and never throws into the hibernation", async () => {
    const io = new ThrowingFsyncIo();
    const closer = new DeferredClose(closeSettings, silentLogger, io);
    const { file, sql } = dbs.create();
    closer.close(file, sql);
    assert.equal(sql.db.open, false);
    assert.equal(walExists(file), false, "SQLite's own close synced and deleted the WAL");
    assert.equal(closer.waiting, 0);
    await closer.idle();
    assert.equal(io.openFds.size, 0);
    assert.equal(dbs.rows(file), 20);
  });
});
