/**
 * Device schema migration 4 (issue #6): telemetry one row per frame. Creates `telemetry_rows`, `telemetry_shapes` and
 * `telemetry_shape_metrics`; where schema 1 created the row-per-reading `telemetry` table, copies every row into a
 * one-reading row with the same id (so stored `telemetry_mark`s of reasoning turns keep their meaning), keeps
 * AUTOINCREMENT's high-water mark as the next id, and drops the old table with its indexes. It runs inside the start
 * event's transaction: a failure leaves the old table as it was.
 */
import type { Value } from "../../codecs/frames.ts";
import type { SqlTag } from "./sql.ts";
import { TELEMETRY_NEXT_ID_KEY, storedValue } from "./telemetry-store.ts";
import { shapeSpec, TelemetryShapes } from "./telemetry-shapes.ts";
import { decodeValue, encodeValue } from "./values.ts";

/** Rows of the old table read per statement, so a full table is never in memory at once. */
const COPY_CHUNK_ROWS = 1000;

/** A row of the schema-1 `telemetry` table. */
interface OldRow {
  id: number;
  ts: number;
  metric: string;
  kind: string;
  value: number | null;
  value_text: string | null;
  value_blob: Uint8Array | null;
  unit: string | null;
}

/** The value of a schema-1 row, exactly as its queries returned it. */
function oldValue(row: OldRow): Value {
  switch (row.kind) {
    case "n":
      return row.value === null ? null : Number(row.value);
    case "b":
      return Number(row.value) !== 0;
    case "s":
      return row.value_text;
    case "d":
      return row.value_blob === null ? null : new Uint8Array(row.value_blob);
    default:
      return decodeValue(row.value_blob);
  }
}

function tableExists(sql: SqlTag, name: string): boolean {
  return sql`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ${name}`.length > 0;
}

/** Creates the telemetry tables of schema 4 and converts a schema-1 `telemetry` table when there is one. */
export function migrateTelemetryRows(sql: SqlTag): void {
  sql`CREATE TABLE IF NOT EXISTS telemetry_rows (
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    shape INTEGER NOT NULL,
    n INTEGER NOT NULL,
    vals BLOB NOT NULL
  )`;
  sql`CREATE INDEX IF NOT EXISTS telemetry_rows_ts ON telemetry_rows (ts, shape)`;
  sql`CREATE TABLE IF NOT EXISTS telemetry_shapes (id INTEGER PRIMARY KEY, spec TEXT NOT NULL UNIQUE)`;
  sql`CREATE TABLE IF NOT EXISTS telemetry_shape_metrics (
    metric TEXT NOT NULL,
    shape INTEGER NOT NULL,
    PRIMARY KEY (metric, shape)
  ) WITHOUT ROWID`;
  if (!tableExists(sql, "telemetry")) return;
  const shapes = new TelemetryShapes(sql);
  let after = 0;
  for (;;) {
    const rows = sql<OldRow>`SELECT id, ts, metric, kind, value, value_text, value_blob, unit FROM telemetry
      WHERE id > ${after} ORDER BY id LIMIT ${COPY_CHUNK_ROWS}`;
    if (rows.length === 0) break;
    for (const row of rows) {
      const shape = shapes.idFor(shapeSpec([{ metric: row.metric, unit: row.unit ?? undefined }]));
      const vals = encodeValue([storedValue(oldValue(row))]);
      sql`INSERT INTO telemetry_rows (id, ts, shape, n, vals) VALUES (${row.id}, ${row.ts}, ${shape}, 1, ${vals})`;
      after = Number(row.id);
    }
  }
  // AUTOINCREMENT's high-water mark: ids the old table handed out and retention deleted are not handed out again.
  const seq = tableExists(sql, "sqlite_sequence")
    ? sql<{ seq: number }>`SELECT seq FROM sqlite_sequence WHERE name = 'telemetry'`
    : [];
  const next = Math.max(after, Number(seq[0]?.seq ?? 0)) + 1;
  sql`INSERT INTO device_meta (key, value) VALUES (${TELEMETRY_NEXT_ID_KEY}, ${encodeValue(next)})
    ON CONFLICT (key) DO UPDATE SET value = excluded.value`;
  sql`DROP TABLE telemetry`;
}
