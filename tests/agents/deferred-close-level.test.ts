import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { DeferredClose } from "../../agents/deferred-close.ts";
import type { SqlRunner } from "../../agents/sql-runner.ts";
import { capturingLogger } from "../support/capturing-logger.ts";
import { silentLogger, tempDir } from "./helpers.ts";
import { agentDatabases, closeSettings, HeldIo, walSize } from "./held-close-io.ts";

// SQLite's synchronous pragma reads back as a number: 0 OFF, 1 NORMAL.
const NORMAL = 1;

/** `sql`'s `exec` or `pragma` throws "disk I/O error" for `source` while the fault's `failing` is set. */
function sqliteFault(sql: SqlRunner, method: "exec" | "pragma", source: string): { failing: boolean } {
  const db = sql.db;
  const original = db[method].bind(db) as (source: string, options?: object) => unknown;
  const fault = { failing: true };
  Object.defineProperty(db, method, {
    configurable: true,
    value: (text: string, options?: object) => {
      if (fault.failing && text === source) throw new Error("disk I/O error");
      return original(text, options);
    },
  });
  return fault;
}

/** The `synchronous` level `sql` had when SQLite closed it, once closed. */
function levelAtClose(sql: SqlRunner): { level: unknown } {
  const db = sql.db;
  const close = db.close.bind(db);
  const seen: { level: unknown } = { level: undefined };
  Object.defineProperty(db, "close", {
    configurable: true,
    value: () => {
      seen.level = db.pragma("synchronous", { simple: true });
      return close();
    },
  });
  return seen;
}

describe("a synchronous level SQLite will not put back leaves the data safe and the agent wakeable", () => {
  const t = tempDir("deferred-close-level-");
  after(() => t.remove());
  const dbs = agentDatabases(t.dir);

  test("a synchronous level SQLite will not put back after a complete copy does not stop the close", async () => {
    const io = new HeldIo();
    const closer = new DeferredClose(closeSettings, silentLogger, io);
    const { file, sql } = dbs.create();
    const fault = sqliteFault(sql, "exec", "PRAGMA synchronous = NORMAL");
    closer.close(file, sql);
    await io.answer();
    fault.failing = false;
    // With every frame in the file, its fsync is all the close needs: at any level, closing copies and syncs nothing.
    assert.deepEqual(io.held, ["db"]);
    await io.answer();
    assert.equal(sql.db.open, false);
    assert.equal(walSize(file), -1);
    assert.equal(closer.waiting, 0);
    await closer.idle();
    assert.deepEqual(io.misuses, []);
    assert.equal(dbs.rows(file), 20);
  });

  test("a level not put back after a failed copy keeps handle and WAL until a wake puts it back", async () => {
    const io = new HeldIo();
    const logger = capturingLogger("error");
    const closer = new DeferredClose(closeSettings, logger.logger, io);
    const { file, sql } = dbs.create();
    sqliteFault(sql, "pragma", "wal_checkpoint(PASSIVE)");
    const restore = sqliteFault(sql, "exec", "PRAGMA synchronous = NORMAL");
    const closed = levelAtClose(sql);
    closer.close(file, sql);
    await io.answer();
    // At OFF, SQLite's close would copy the frames without syncing the file and then delete the WAL.
    assert.equal(sql.db.open, true);
    assert.ok(walSize(file) > 0);
    assert.equal(closer.waiting, 1);
    assert.throws(() => closer.settle(file), { code: "BRIDGE_ERR_STORAGE" });
    closer.settleAll();
    assert.equal(sql.db.open, true, "a shutdown leaves it open too");
    assert.match(logger.lines.map((l) => String(l.msg)).join("\n"), /synchronous level .* could not be restored/);
    // The fault is gone: the next wake puts the level back and closes the handle through SQLite, synced.
    restore.failing = false;
    closer.settle(file);
    assert.equal(sql.db.open, false);
    assert.equal(closed.level, NORMAL);
    assert.equal(closer.waiting, 0);
    await closer.idle();
    assert.deepEqual(io.misuses, []);
    assert.equal(io.openFds.size, 0);
    assert.equal(dbs.rows(file), 20);
  });
});
