import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Database from "better-sqlite3";
import { SqlRunner } from "../../agents/sql-runner.ts";
import type { SqlValue } from "../../agents/types.ts";

function runner(): SqlRunner {
  const db = new Database(":memory:");
  db.exec("CREATE TABLE t (v INTEGER)");
  return new SqlRunner(db);
}

/** The runner's template as a tag function, as Agent.sql calls it (with its readonly check when given). */
function tag<Row = Record<string, unknown>>(sql: SqlRunner, refuseWrite?: () => void) {
  return (strings: TemplateStringsArray, ...values: SqlValue[]): Row[] => sql.tagged<Row>(strings, values, refuseWrite);
}

function count(sql: SqlRunner): number {
  return (sql.get<{ n: number }>("SELECT COUNT(*) AS n FROM t")?.n ?? -1) as number;
}

describe("lazy transactions of the sql runner", () => {
  test("reads and savepoints alone never reach SQLite, and COMMIT then ends nothing", () => {
    const sql = runner();
    try {
      sql.beginLazy();
      sql.control("SAVEPOINT ev");
      assert.equal(count(sql), 0);
      tag(sql)`SELECT v FROM t`;
      sql.control("RELEASE ev");
      assert.equal(sql.inTransaction, true);
      assert.equal(sql.db.inTransaction, false, "SQLite saw no BEGIN");
      assert.equal(sql.wrote, false);
      sql.control("COMMIT");
      assert.equal(sql.inTransaction, false);
    } finally {
      sql.db.close();
    }
  });

  test("a write the caller's check refuses runs nothing: no BEGIN, reads still run, and a later write commits", () => {
    const sql = runner();
    try {
      const refuse = () => {
        throw new Error("refused");
      };
      sql.beginLazy();
      assert.throws(() => tag(sql, refuse)`INSERT INTO t (v) VALUES (1)`, { message: "refused" });
      assert.equal(sql.db.inTransaction, false, "SQLite saw no BEGIN");
      assert.deepEqual(tag(sql, refuse)`SELECT v FROM t`, []);
      tag(sql)`INSERT INTO t (v) VALUES (2)`;
      sql.control("COMMIT");
      assert.equal(sql.db.inTransaction, false);
      assert.deepEqual(sql.all("SELECT v FROM t"), [{ v: 2 }]);
    } finally {
      sql.db.close();
    }
  });

  test("a BEGIN while a lazy transaction is open is refused, and the lazy transaction goes on", () => {
    const sql = runner();
    try {
      sql.beginLazy();
      assert.throws(
        () => sql.control("BEGIN"),
        (err: Error & { code?: string }) =>
          err.code === "BRIDGE_ERR_STORAGE" && /a transaction is already open/.test(err.message),
      );
      assert.equal(sql.db.inTransaction, false, "SQLite saw no BEGIN");
      sql.run("INSERT INTO t (v) VALUES (1)");
      sql.control("COMMIT");
      assert.equal(sql.db.inTransaction, false);
      assert.equal(count(sql), 1);
    } finally {
      sql.db.close();
    }
  });

  test("the first write issues BEGIN and the pending savepoints, so rolling back to one undoes only its writes", () => {
    const sql = runner();
    try {
      sql.beginLazy();
      sql.control("SAVEPOINT ev");
      sql.control("RELEASE ev");
      sql.control("SAVEPOINT ev");
      sql.control("SAVEPOINT nest");
      sql.run("INSERT INTO t (v) VALUES (1)");
      assert.equal(sql.db.inTransaction, true);
      assert.equal(sql.wrote, true);
      sql.control("ROLLBACK TO nest");
      sql.control("RELEASE nest");
      tag(sql)`INSERT INTO t (v) VALUES (${2})`;
      sql.control("RELEASE ev");
      sql.control("SAVEPOINT ev");
      tag(sql)`INSERT INTO t (v) VALUES (${3})`;
      sql.control("ROLLBACK TO ev");
      sql.control("RELEASE ev");
      sql.control("COMMIT");
      assert.equal(sql.db.inTransaction, false);
      assert.deepEqual(
        sql.all<{ v: number }>("SELECT v FROM t").map((r) => r.v),
        [2],
      );
    } finally {
      sql.db.close();
    }
  });

  test("a statement with RETURNING counts as a write and a lazy ROLLBACK discards nothing real", () => {
    const sql = runner();
    try {
      sql.beginLazy();
      sql.control("ROLLBACK");
      assert.equal(sql.inTransaction, false);
      sql.beginLazy();
      const rows = tag<{ v: number }>(sql)`INSERT INTO t (v) VALUES (${5}) RETURNING v`;
      assert.deepEqual(rows, [{ v: 5 }]);
      assert.equal(sql.wrote, true, "RETURNING is a reader statement that writes");
      sql.control("ROLLBACK");
      assert.equal(count(sql), 0);
      assert.throws(() => {
        sql.beginLazy();
        sql.beginLazy();
      }, /already open/);
    } finally {
      sql.db.close();
    }
  });

  test("the runner follows SQLite's transaction state itself, and asks SQLite again once a statement failed", () => {
    const sql = runner();
    try {
      sql.db.exec("CREATE TABLE u (k INTEGER UNIQUE)");
      sql.beginLazy();
      tag(sql)`INSERT INTO t (v) VALUES (${1})`;
      tag(sql)`INSERT OR ROLLBACK INTO u (k) VALUES (${1})`;
      assert.equal(sql.wrote, true);
      // OR ROLLBACK makes SQLite end the whole transaction on its own when the statement fails.
      assert.throws(() => tag(sql)`INSERT OR ROLLBACK INTO u (k) VALUES (${1})`, /UNIQUE/);
      assert.equal(sql.db.inTransaction, false);
      assert.equal(sql.inTransaction, false, "a failed statement makes the runner ask SQLite");
      assert.equal(sql.wrote, false);
      assert.equal(count(sql), 0, "the first insert went with the transaction");
      sql.beginLazy();
      tag(sql)`INSERT INTO t (v) VALUES (${2})`;
      sql.control("COMMIT");
      assert.equal(sql.inTransaction, false);
      assert.equal(count(sql), 1);
    } finally {
      sql.db.close();
    }
  });

  test("a savepoint opened outside any transaction begins one, and the runner sees it", () => {
    const sql = runner();
    try {
      sql.control("SAVEPOINT outer");
      assert.equal(sql.db.inTransaction, true);
      assert.equal(sql.inTransaction, true);
      sql.control("RELEASE outer");
      assert.equal(sql.inTransaction, false);
      sql.beginLazy();
      sql.control("COMMIT");
      assert.equal(sql.inTransaction, false);
    } finally {
      sql.db.close();
    }
  });
  test("transaction control behind a leading comment or semicolon is refused, so SQLite never moves behind the runner", () => {
    const sql = runner();
    const t = tag(sql);
    // Each hides a control statement from a plain `^\s*BEGIN|COMMIT...` test; SQLite skips the prefix and runs it.
    const hidden: Array<() => unknown> = [
      () => t`/* note */ COMMIT`,
      () => t`-- note
ROLLBACK`,
      () => t`; COMMIT`,
      () => t` /* a */ -- b
 /**/END`,
      () => t`/**/SAVEPOINT s`,
      () => t`/**/RELEASE ev`,
    ];
    try {
      for (const run of hidden) {
        sql.control("BEGIN");
        sql.control("SAVEPOINT ev");
        t`INSERT INTO t (v) VALUES (${1})`;
        assert.throws(run, /may not control transactions/);
        assert.equal(sql.db.inTransaction, true, "SQLite's transaction is still open");
        assert.equal(sql.inTransaction, sql.db.inTransaction);
        sql.control("RELEASE ev");
        sql.control("ROLLBACK");
        assert.equal(sql.inTransaction, false);
      }
      assert.equal(count(sql), 0, "every insert rolled back with its transaction");
      sql.beginLazy();
      assert.throws(() => t`/* x */ BEGIN`, /may not control transactions/);
      assert.equal(sql.db.inTransaction, false, "no BEGIN behind the lazy transaction's back");
      sql.control("COMMIT");
    } finally {
      sql.db.close();
    }
  });
  test("after SQLite rolled the transaction back on its own, a write is refused instead of committing alone", () => {
    const sql = runner();
    const t = tag(sql);
    try {
      sql.db.exec("CREATE TABLE u (k INTEGER UNIQUE); INSERT INTO u (k) VALUES (1)");
      sql.beginLazy();
      t`INSERT INTO t (v) VALUES (${1})`;
      assert.throws(() => t`INSERT OR ROLLBACK INTO u (k) VALUES (${1})`, /UNIQUE/);
      assert.equal(sql.db.inTransaction, false, "SQLite ended the transaction");
      // The handler caught that error and writes on: outside a transaction this row would commit at once, ahead of
      // an event that is going to fail.
      assert.throws(() => t`INSERT INTO t (v) VALUES (${2})`, /transaction was lost/);
      assert.throws(() => sql.run("INSERT INTO t (v) VALUES (3)"), /transaction was lost/);
      assert.equal(count(sql), 0, "reads still run; nothing was written");
      assert.equal(sql.inTransaction, false);
      sql.rollback();
      assert.equal(sql.inTransaction, false);
      t`INSERT INTO t (v) VALUES (${4})`;
      assert.equal(count(sql), 1, "once the runtime ended the transaction, a write outside one commits alone again");
      // The same through the batch's path: a fresh lazy transaction ends the lost one too.
      sql.beginLazy();
      t`INSERT INTO t (v) VALUES (${5})`;
      assert.throws(() => t`INSERT OR ROLLBACK INTO u (k) VALUES (${1})`, /UNIQUE/);
      assert.throws(() => t`INSERT INTO t (v) VALUES (${6})`, /transaction was lost/);
      sql.beginLazy();
      t`INSERT INTO t (v) VALUES (${7})`;
      sql.control("COMMIT");
      assert.deepEqual(
        sql.all<{ v: number }>("SELECT v FROM t ORDER BY v").map((r) => r.v),
        [4, 7],
      );
    } finally {
      sql.db.close();
    }
  });

  test("closing the handle through the runner ends what it believed open, as SQLite's own answer for a closed handle", () => {
    const sql = runner();
    sql.control("BEGIN");
    tag(sql)`INSERT INTO t (v) VALUES (${1})`;
    assert.equal(sql.inTransaction, true);
    sql.close();
    assert.equal(sql.db.open, false);
    assert.equal(sql.db.inTransaction, false);
    assert.equal(sql.inTransaction, false);
    assert.equal(sql.wrote, false);
    sql.close();
  });
  test("a control statement in a form the runner does not follow makes it ask SQLite, not keep its own belief", () => {
    const sql = runner();
    try {
      for (const [open, end] of [
        ["BEGIN", "END TRANSACTION"],
        ["BEGIN", "COMMIT TRANSACTION"],
        ["BEGIN", "rollback"],
        ["BEGIN IMMEDIATE", "COMMIT"],
      ]) {
        sql.control(open);
        sql.run("INSERT INTO t (v) VALUES (1)");
        assert.equal(sql.inTransaction, true, open);
        sql.control(end);
        assert.equal(sql.db.inTransaction, false, end);
        assert.equal(sql.inTransaction, false, `${open} ... ${end}`);
        sql.beginLazy();
        sql.control("COMMIT");
      }
      // A failed write outside any transaction afterwards is only a failed write, not a lost transaction.
      sql.control("BEGIN");
      sql.control("END TRANSACTION");
      assert.throws(() => sql.run("INSERT INTO nowhere (v) VALUES (1)"), /no such table/);
      sql.run("INSERT INTO t (v) VALUES (2)");
      assert.equal(sql.inTransaction, false);
    } finally {
      sql.db.close();
    }
  });
});
