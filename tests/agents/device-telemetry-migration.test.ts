/** Device schema migration 4 (issue #6) on a database the previous code created: rows, ids, types and queries. */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, test } from "node:test";
import Database from "better-sqlite3";
import type { TelemetryRow } from "../../agents/device/index.ts";
import { DEVICE_SCHEMA_VERSION } from "../../agents/device/schema.ts";
import { decodeValue, encodeValue } from "../../agents/device/values.ts";
import { DeviceHarness } from "./device-harness.ts";
import { createSchemaV3Database } from "./fixtures/device-schema-v3.ts";

const harnesses: DeviceHarness[] = [];
after(async () => {
  for (const h of harnesses) await h.dispose();
});

const T = Date.UTC(2026, 0, 15, 11, 0, 0);

/** A harness whose agent `id` starts from a schema-3 database holding `rows`. */
function oldAgent(id: string, sequence?: number): DeviceHarness {
  const h = new DeviceHarness();
  harnesses.push(h);
  const dir = path.join(h.dataDir, "agents");
  fs.mkdirSync(dir, { recursive: true });
  createSchemaV3Database(
    path.join(dir, `${id}.db`),
    [
      { id: 3, ts: T, metric: "temp", kind: "n", value: 21.5, unit: "Cel" },
      { id: 4, ts: T, metric: "door", kind: "b", value: 1 },
      { id: 7, ts: T + 1000, metric: "mode", kind: "s", valueText: "eco" },
      { id: 8, ts: T + 1000, metric: "raw", kind: "d", valueBlob: new Uint8Array([1, 2, 3]) },
      { id: 9, ts: T + 2000, metric: "cfg", kind: "v", valueBlob: encodeValue({ a: [1, 2], on: true }) },
      { id: 10, ts: T + 2000, metric: "temp", kind: "n", value: null, unit: "Cel" },
    ],
    sequence,
  );
  return h;
}

/** The telemetry rows (ids, times, counts) and the next-id mark as the file holds them, read after shutdown. */
function readBack(h: DeviceHarness, id: string): { ids: number[]; next: unknown; version: number; oldTable: boolean } {
  const db = new Database(path.join(h.dataDir, "agents", `${id}.db`), { readonly: true });
  try {
    const ids = db
      .prepare("SELECT id, n FROM telemetry_rows ORDER BY id")
      .all()
      .flatMap((r) => {
        const row = r as { id: number; n: number };
        return Array.from({ length: row.n }, (_, k) => row.id + k);
      });
    const meta = db.prepare("SELECT value FROM device_meta WHERE key = 'telemetry_next_id'").get() as
      | { value: Uint8Array }
      | undefined;
    const version = (db.prepare("SELECT version FROM device_schema").get() as { version: number }).version;
    const oldTable = db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'telemetry'").get() !== undefined;
    return { ids, next: meta === undefined ? undefined : decodeValue(meta.value), version, oldTable };
  } finally {
    db.close();
  }
}

test("rows of a schema-3 telemetry table read back through queries with their types, units and order", async () => {
  const h = oldAgent("old-m1");
  const rows = await h.call<TelemetryRow[]>("old-m1", "queryTelemetry", { order: "asc", from: 0 });
  assert.deepEqual(rows, [
    { ts: T, metric: "temp", value: 21.5, unit: "Cel" },
    { ts: T, metric: "door", value: true },
    { ts: T + 1000, metric: "mode", value: "eco" },
    { ts: T + 1000, metric: "raw", value: new Uint8Array([1, 2, 3]) },
    { ts: T + 2000, metric: "cfg", value: { a: [1, 2], on: true } },
    { ts: T + 2000, metric: "temp", value: null, unit: "Cel" },
  ]);
  assert.deepEqual(await h.call<TelemetryRow[]>("old-m1", "queryTelemetry", { metric: "temp", from: 0 }), [
    { ts: T + 2000, metric: "temp", value: null, unit: "Cel" },
    { ts: T, metric: "temp", value: 21.5, unit: "Cel" },
  ]);
  assert.deepEqual(
    await h.call<TelemetryRow[]>("old-m1", "queryTelemetry", { from: T + 500, to: T + 1500, order: "asc" }),
    [
      { ts: T + 1000, metric: "mode", value: "eco" },
      { ts: T + 1000, metric: "raw", value: new Uint8Array([1, 2, 3]) },
    ],
  );
});

test("migration keeps every old id, drops the old table, and new readings get ids above AUTOINCREMENT's mark", async () => {
  // The old table had handed out ids up to 15 (retention deleted 11 to 15): they are never handed out again.
  const h = oldAgent("old-m2", 15);
  const dev = await h.open("old-m2");
  await h.send(dev, { channel: "telemetry", frame: { r: { temp: 22, hum: 40 } } });
  await h.runtime.shutdown();
  const stored = readBack(h, "old-m2");
  assert.deepEqual(stored.ids, [3, 4, 7, 8, 9, 10, 16, 17]);
  assert.equal(stored.version, DEVICE_SCHEMA_VERSION);
  assert.equal(stored.oldTable, false);
  assert.equal(stored.next, 16, "the mark written by the migration");
  await h.restart();
  const newest = await h.call<TelemetryRow[]>("old-m2", "queryTelemetry", { limit: 2 });
  assert.deepEqual(
    newest.map((r) => r.metric),
    ["hum", "temp"],
  );
  assert.equal((await h.call<TelemetryRow[]>("old-m2", "queryTelemetry", { from: 0, limit: 100 })).length, 8);
});
