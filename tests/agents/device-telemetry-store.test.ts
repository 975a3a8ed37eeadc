/** TelemetryStore on its own (schema 4, issue #6): reading ids, retention, row splitting, shapes and value types. */
import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import Database from "better-sqlite3";
import { migrateDeviceSchema } from "../../agents/device/schema.ts";
import type { SqlTag } from "../../agents/device/sql.ts";
import type { Reading } from "../../agents/device/telemetry-readings.ts";
import { SHAPES_PRUNE_AT } from "../../agents/device/telemetry-shapes.ts";
import { TELEMETRY_ROW_MAX_READINGS, TelemetryStore } from "../../agents/device/telemetry-store.ts";
import type { TelemetryRetention } from "../../agents/device/telemetry-store.ts";
import { sqlTagOf } from "./device-sql.ts";
import { tempDir } from "./helpers.ts";

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);

describe("telemetry store", () => {
  const t = tempDir("telemetry-store-");
  const open: Database.Database[] = [];
  after(() => {
    for (const db of open) db.close();
    t.remove();
  });
  let n = 0;

  function database(): { db: Database.Database; sql: SqlTag } {
    const db = new Database(path.join(t.dir, `t-${++n}.db`));
    open.push(db);
    const sql = sqlTagOf(db);
    migrateDeviceSchema(sql);
    return { db, sql };
  }

  function store(sql: SqlTag, clock: { now: number }, retention: Partial<TelemetryRetention> = {}): TelemetryStore {
    return new TelemetryStore(sql, () => clock.now, {
      maxAgeSeconds: 3600,
      maxRows: 1000,
      everyRows: 1_000_000,
      ...retention,
    });
  }

  const frame = (ts: number, ...pairs: Array<[string, Reading["value"]]>): Reading[] =>
    pairs.map(([metric, value]) => ({ metric, ts, value }));

  test("reading ids keep increasing after retention empties the table, also for a new store on the same file", () => {
    const { sql } = database();
    const clock = { now: T0 };
    const s = store(sql, clock);
    s.insert(frame(T0, ["a", 1], ["b", 2]));
    s.insert(frame(T0 + 1, ["a", 3]));
    assert.equal(s.newestId(), 3);
    clock.now = T0 + 2 * 3600 * 1000;
    assert.equal(s.enforceRetention(), 3);
    assert.equal(s.count(), 0);
    assert.equal(s.newestId(), 3, "an empty table still remembers the ids it handed out");

    const restarted = store(sql, clock);
    assert.equal(restarted.newestId(), 3);
    restarted.insert(frame(clock.now, ["a", 4]));
    assert.equal(restarted.newestId(), 4);
    assert.deepEqual(restarted.storedAfter(3, 10), [{ ts: clock.now, metric: "a", value: 4 }]);
    assert.deepEqual(restarted.storedAfter(4, 10), []);
  });

  test("a mark inside a stored frame lists only the readings after it, newest first", () => {
    const { sql } = database();
    const s = store(sql, { now: T0 });
    s.insert(frame(T0, ["a", 1], ["b", 2], ["c", 3]));
    s.insert(frame(T0 + 5, ["a", 4]));
    assert.deepEqual(
      s.storedAfter(1, 10).map((r) => r.value),
      [4, 3, 2],
    );
    assert.deepEqual(
      s.storedAfter(1, 2).map((r) => r.value),
      [4, 3],
    );
  });

  test("a frame over the row size and SenML records at different times are split into rows, order kept", () => {
    const { sql } = database();
    const s = store(sql, { now: T0 });
    const big = Array.from({ length: TELEMETRY_ROW_MAX_READINGS + 6 }, (_, i): [string, number] => [`m${i}`, i]);
    s.insert(frame(T0, ...big));
    s.insert([
      { metric: "x", ts: T0 + 2, value: 1, unit: "Cel" },
      { metric: "y", ts: T0 + 1, value: 2 },
      { metric: "x", ts: T0 + 2, value: 3, unit: "Cel" },
    ]);
    assert.equal(s.newestId(), big.length + 3);
    const all = s.query({ order: "asc", limit: 10_000 });
    assert.deepEqual(
      all.slice(0, big.length).map((r) => r.value),
      big.map((b) => b[1]),
    );
    assert.deepEqual(all.slice(big.length), [
      { ts: T0 + 1, metric: "y", value: 2 },
      { ts: T0 + 2, metric: "x", value: 1, unit: "Cel" },
      { ts: T0 + 2, metric: "x", value: 3, unit: "Cel" },
    ]);
    assert.deepEqual(
      s.query({ metric: "x" }).map((r) => r.value),
      [3, 1],
    );
    assert.deepEqual(
      s.query({ metric: "m69" }).map((r) => r.value),
      [69],
    );
    assert.deepEqual(s.query({ metric: "nope" }), []);
    assert.equal(s.query({ order: "desc", limit: 5 }).length, 5);
  });

  test("row-count retention deletes the oldest frames whole and keeps at most maxRows readings", () => {
    const { sql } = database();
    const s = store(sql, { now: T0 }, { maxRows: 7, everyRows: 6 });
    for (let i = 0; i < 5; i++) s.insert(frame(T0 + i, ["a", i], ["b", i], ["c", i]));
    // Retention ran at reading id 6 (6 stored, under the cap) and 12 (12 stored: frames 1 and 2 went whole), then
    // frame 5 made 9: the next run deletes frame 3 whole, which leaves 6, not 7.
    assert.equal(s.enforceRetention(), 3);
    assert.deepEqual(
      s.query({ order: "asc", metric: "a" }).map((r) => r.value),
      [3, 4],
    );
    assert.equal(s.count(), 6);
  });

  test("values keep their types: numbers (bigints as numbers, NaN as null), booleans, text, bytes and maps", () => {
    const { sql } = database();
    const s = store(sql, { now: T0 });
    s.insert(
      frame(
        T0,
        ["n", 21.5],
        ["i", 2n ** 40n],
        ["nan", Number.NaN],
        ["bool", false],
        ["text", "eco"],
        ["bytes", new Uint8Array([9, 8])],
        ["map", { a: [1, "x"], b: null }],
      ),
    );
    assert.deepEqual(
      s.query({ order: "asc" }).map((r) => r.value),
      [21.5, 2 ** 40, null, false, "eco", new Uint8Array([9, 8]), { a: [1, "x"], b: null }],
    );
  });

  test("frames with the same metric names but another unit or order keep their own units and order", () => {
    const { sql } = database();
    const s = store(sql, { now: T0 });
    s.insert([
      { metric: "t", ts: T0, value: 1, unit: "Cel" },
      { metric: "h", ts: T0, value: 2 },
    ]);
    s.insert([
      { metric: "t", ts: T0 + 1, value: 3, unit: "K" },
      { metric: "h", ts: T0 + 1, value: 4 },
    ]);
    s.insert([
      { metric: "h", ts: T0 + 2, value: 5 },
      { metric: "t", ts: T0 + 2, value: 6, unit: "K" },
    ]);
    s.insert([
      { metric: "h", ts: T0 + 3, value: 7 },
      { metric: "t", ts: T0 + 3, value: 8, unit: "K" },
    ]);
    assert.deepEqual(
      s.query({ order: "asc" }).map((r) => `${r.metric}=${String(r.value)}${r.unit ?? ""}`),
      ["t=1Cel", "h=2", "t=3K", "h=4", "h=5", "t=6K", "h=7", "t=8K"],
    );
  });

  test("a rolled-back insert leaves no rows, and after invalidate its ids are handed out again", () => {
    const { db, sql } = database();
    const s = store(sql, { now: T0 });
    s.insert(frame(T0, ["a", 1]));
    db.exec("BEGIN");
    s.insert(frame(T0, ["new-shape", 2]));
    db.exec("ROLLBACK");
    s.invalidate();
    assert.equal(s.newestId(), 1);
    s.insert(frame(T0, ["new-shape", 3]));
    assert.deepEqual(s.query({ metric: "new-shape" }), [{ ts: T0, metric: "new-shape", value: 3 }]);
  });

  test("shapes no row uses are deleted once there are more than SHAPES_PRUNE_AT", () => {
    const { sql } = database();
    const clock = { now: T0 };
    const s = store(sql, clock, { maxRows: 1 });
    for (let i = 0; i <= SHAPES_PRUNE_AT + 5; i++) s.insert(frame(T0, [`metric-${i}`, i]));
    s.enforceRetention();
    const shapes = sql<{ n: number }>`SELECT COUNT(*) AS n FROM telemetry_shapes`[0].n;
    const index = sql<{ n: number }>`SELECT COUNT(*) AS n FROM telemetry_shape_metrics`[0].n;
    assert.deepEqual([shapes, index], [1, 1]);
    s.insert(frame(T0, ["metric-0", 7]));
    assert.deepEqual(s.query({ metric: "metric-0" }), [{ ts: T0, metric: "metric-0", value: 7 }]);
  });
});
