/**
 * Telemetry in the agent's SQLite: one row per reading, typed by `kind`, with retention by age and by row count
 * enforced once every N inserted rows (the AUTOINCREMENT id tells when, so the cadence survives hibernation).
 */
import type { Value } from "../../codecs/frames.ts";
import type { Reading } from "./telemetry-readings.ts";
import type { SqlTag, SqlValue } from "./sql.ts";
import { decodeValue, encodeValue } from "./values.ts";

/** A stored reading as queries return it. */
export interface TelemetryRow {
  ts: number;
  metric: string;
  value: Value;
  unit?: string;
}

/** `queryTelemetry` filter. Times are ms since the Unix epoch, inclusive. */
export interface TelemetryQuery {
  from?: number;
  to?: number;
  metric?: string;
  /** Rows returned. Default 1000, at most 10000. */
  limit?: number;
  /** Newest first ("desc", the default) or oldest first ("asc"). */
  order?: "asc" | "desc";
}

export interface TelemetryRetention {
  maxAgeSeconds: number;
  maxRows: number;
  everyRows: number;
}

export const TELEMETRY_QUERY_MAX_ROWS = 10_000;

interface StoredRow {
  ts: number;
  metric: string;
  kind: string;
  value: number | null;
  value_text: string | null;
  value_blob: Uint8Array | null;
  unit: string | null;
}

function columns(value: Value): { kind: string; num: SqlValue; text: SqlValue; blob: SqlValue } {
  if (typeof value === "number") return { kind: "n", num: value, text: null, blob: null };
  if (typeof value === "bigint") return { kind: "n", num: Number(value), text: null, blob: null };
  if (typeof value === "boolean") return { kind: "b", num: value ? 1 : 0, text: null, blob: null };
  if (typeof value === "string") return { kind: "s", num: null, text: value, blob: null };
  if (value instanceof Uint8Array) return { kind: "d", num: null, text: null, blob: value };
  return { kind: "v", num: null, text: null, blob: encodeValue(value) };
}

function rowValue(row: StoredRow): Value {
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

function toRow(row: StoredRow): TelemetryRow {
  const out: TelemetryRow = { ts: Number(row.ts), metric: row.metric, value: rowValue(row) };
  if (row.unit !== null) out.unit = row.unit;
  return out;
}

/** Reading and writing the telemetry table. */
export class TelemetryStore {
  constructor(
    private readonly sql: SqlTag,
    private readonly now: () => number,
    private readonly retention: TelemetryRetention,
  ) {}

  /** Stores readings; runs retention when the id counter crosses a multiple of `everyRows`. */
  insert(readings: readonly Reading[]): { stored: number; pruned: number } {
    let lastId = 0;
    for (const reading of readings) {
      const c = columns(reading.value);
      const rows = this.sql<{
        id: number;
      }>`INSERT INTO telemetry (ts, metric, kind, value, value_text, value_blob, unit)
        VALUES (${reading.ts}, ${reading.metric}, ${c.kind}, ${c.num}, ${c.text}, ${c.blob}, ${reading.unit ?? null})
        RETURNING id`;
      lastId = Number(rows[0]?.id ?? lastId);
    }
    if (readings.length === 0) return { stored: 0, pruned: 0 };
    const every = this.retention.everyRows;
    const crossed = Math.floor(lastId / every) > Math.floor((lastId - readings.length) / every);
    return { stored: readings.length, pruned: crossed ? this.enforceRetention() : 0 };
  }

  /** Deletes rows older than the age limit and the oldest rows beyond the row limit. Returns rows deleted. */
  enforceRetention(): number {
    const cutoff = this.now() - this.retention.maxAgeSeconds * 1000;
    const byAge = this.sql<{ n: number }>`DELETE FROM telemetry WHERE ts < ${cutoff} RETURNING 1 AS n`.length;
    const boundary = this.sql<{
      id: number;
    }>`SELECT id FROM telemetry ORDER BY id DESC LIMIT 1 OFFSET ${this.retention.maxRows}`;
    let byCount = 0;
    if (boundary.length > 0) {
      byCount = this.sql<{ n: number }>`DELETE FROM telemetry WHERE id <= ${boundary[0].id} RETURNING 1 AS n`.length;
    }
    return byAge + byCount;
  }

  /** The id of the newest stored row (0 when none): a mark for `storedAfter`. */
  newestId(): number {
    return Number(this.sql<{ n: number | null }>`SELECT MAX(id) AS n FROM telemetry`[0]?.n ?? 0);
  }

  /**
   * At most `limit` rows stored after the row with id `afterId`, newest reading first. By storage order rather
   * than by timestamp, so a late reading with an old device timestamp is not missed and none is listed twice.
   */
  storedAfter(afterId: number, limit: number): TelemetryRow[] {
    const n = Math.max(0, Math.min(limit, TELEMETRY_QUERY_MAX_ROWS));
    return this.sql<StoredRow>`SELECT ts, metric, kind, value, value_text, value_blob, unit FROM telemetry
      WHERE id > ${afterId} ORDER BY ts DESC, id DESC LIMIT ${n}`.map(toRow);
  }

  /** Rows matching `query`, newest first unless `order` is "asc". */
  query(query: TelemetryQuery = {}): TelemetryRow[] {
    const from = query.from ?? Number.MIN_SAFE_INTEGER;
    const to = query.to ?? Number.MAX_SAFE_INTEGER;
    const limit = Math.max(0, Math.min(query.limit ?? 1000, TELEMETRY_QUERY_MAX_ROWS));
    const metric = query.metric ?? null;
    // Four literal statements rather than `(? IS NULL OR metric = ?)`, so SQLite can use the (metric, ts) index.
    const asc = query.order === "asc";
    let rows: StoredRow[];
    if (metric !== null && asc) {
      rows = this.sql<StoredRow>`SELECT ts, metric, kind, value, value_text, value_blob, unit FROM telemetry
        WHERE metric = ${metric} AND ts >= ${from} AND ts <= ${to} ORDER BY ts ASC, id ASC LIMIT ${limit}`;
    } else if (metric !== null) {
      rows = this.sql<StoredRow>`SELECT ts, metric, kind, value, value_text, value_blob, unit FROM telemetry
        WHERE metric = ${metric} AND ts >= ${from} AND ts <= ${to} ORDER BY ts DESC, id DESC LIMIT ${limit}`;
    } else if (asc) {
      rows = this.sql<StoredRow>`SELECT ts, metric, kind, value, value_text, value_blob, unit FROM telemetry
        WHERE ts >= ${from} AND ts <= ${to} ORDER BY ts ASC, id ASC LIMIT ${limit}`;
    } else {
      rows = this.sql<StoredRow>`SELECT ts, metric, kind, value, value_text, value_blob, unit FROM telemetry
        WHERE ts >= ${from} AND ts <= ${to} ORDER BY ts DESC, id DESC LIMIT ${limit}`;
    }
    return rows.map(toRow);
  }

  /** Rows stored now. */
  count(): number {
    return Number(this.sql<{ n: number }>`SELECT COUNT(*) AS n FROM telemetry`[0]?.n ?? 0);
  }
}
