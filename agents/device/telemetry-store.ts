/**
 * Telemetry in the agent's SQLite, one row per frame (issue #6). A row of `telemetry_rows` holds the readings of one
 * frame that share a timestamp: a shape id (the metric names and units, telemetry-shapes.ts), the count `n` and the
 * values as one CBOR array. A telemetry commit then writes two B-tree leaves (the row and the `(ts, shape)` index)
 * instead of one leaf per index per reading plus `sqlite_sequence` (docs/device-agent.md, "Telemetry storage").
 *
 * Every reading keeps its own id: a row's readings are `id`, `id + 1`, ... `id + n - 1`. Ids strictly increase and are
 * never reused, also after retention emptied the table: the next id is held in memory, and every deletion writes it
 * to `device_meta` (`telemetry_next_id`) in the same transaction, so `max(meta, newest row's id + n)` restores it.
 */
import type { Value } from "../../codecs/frames.ts";
import type { Reading } from "./telemetry-readings.ts";
import { TelemetryShapes } from "./telemetry-shapes.ts";
import type { TelemetryShape } from "./telemetry-shapes.ts";
import type { SqlTag } from "./sql.ts";
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
  /** Readings returned. Default 1000, at most 10000. */
  limit?: number;
  /** Newest first ("desc", the default) or oldest first ("asc"). */
  order?: "asc" | "desc";
  /**
   * Continue a page: only readings strictly after this one in the query's order (`next` of the previous page). Paging
   * on `ts` alone cannot: readings of one frame share their ts, and a page may end among them.
   */
  after?: TelemetryCursor;
}

/** Where a page of readings ended: the last reading's ts and id (ids are unique per device and never reused). */
export interface TelemetryCursor {
  ts: number;
  id: number;
}

/** A page of readings, and where the next one starts (null when this page was not full: nothing more matched). */
export interface TelemetryPage {
  readings: TelemetryRow[];
  next: TelemetryCursor | null;
}

export interface TelemetryRetention {
  maxAgeSeconds: number;
  maxRows: number;
  everyRows: number;
}

export const TELEMETRY_QUERY_MAX_ROWS = 10_000;
/** Most readings in one stored row; a larger frame takes several rows. Bounds the id window `storedAfter` reads. */
export const TELEMETRY_ROW_MAX_READINGS = 64;
/** `device_meta` key of the next reading id, written with every deletion. */
export const TELEMETRY_NEXT_ID_KEY = "telemetry_next_id";

interface StoredRow {
  id: number;
  ts: number;
  shape: number;
  vals: Uint8Array;
}

/** The value as stored: numbers as doubles (bigints too, NaN as null, as the REAL column of schema 1 did). */
export function storedValue(value: Value): Value {
  if (typeof value === "bigint") return Number(value);
  if (typeof value === "number" && Number.isNaN(value)) return null;
  return value;
}

/** A decoded top-level value back in the type a query returns (plain Uint8Array bytes, numbers never bigints). */
function readValue(value: Value | undefined): Value {
  if (value === undefined) return null;
  if (typeof value === "bigint") return Number(value);
  if (value instanceof Uint8Array) return new Uint8Array(value);
  return value;
}

/** Reading and writing the telemetry rows. */
export class TelemetryStore {
  readonly shapes: TelemetryShapes;
  /** The next reading id; undefined until first needed (read from the database). */
  #nextId: number | undefined;
  /** Readings stored, once counted for row-count retention; kept exact by inserts and deletes. */
  #readings: number | undefined;

  constructor(
    private readonly sql: SqlTag,
    private readonly now: () => number,
    private readonly retention: TelemetryRetention,
  ) {
    this.shapes = new TelemetryShapes(sql);
  }

  /** Forgets what memory holds ahead of the database (after a rolled-back event). */
  invalidate(): void {
    this.#nextId = undefined;
    this.#readings = undefined;
    this.shapes.invalidate();
  }

  #next(): number {
    if (this.#nextId === undefined) {
      const newest = this.sql<{ next: number }>`SELECT id + n AS next FROM telemetry_rows ORDER BY id DESC LIMIT 1`;
      const meta = this.sql<{
        value: Uint8Array | null;
      }>`SELECT value FROM device_meta WHERE key = ${TELEMETRY_NEXT_ID_KEY}`;
      const stored = meta.length > 0 ? decodeValue(meta[0].value) : null;
      this.#nextId = Math.max(1, Number(newest[0]?.next ?? 1), typeof stored === "number" ? stored : 1);
    }
    return this.#nextId;
  }

  /** Stores readings; runs retention when the id counter crosses a multiple of `everyRows`. */
  insert(readings: readonly Reading[]): { stored: number; pruned: number } {
    if (readings.length === 0) return { stored: 0, pruned: 0 };
    const first = this.#next();
    let id = first;
    let start = 0;
    // One row per run of readings with the same timestamp (a frame's `r` and `rv` share one; SenML may not).
    for (let i = 1; i <= readings.length; i++) {
      if (i < readings.length && readings[i].ts === readings[start].ts && i - start < TELEMETRY_ROW_MAX_READINGS)
        continue;
      const shape = this.shapes.idForReadings(readings, start, i);
      const values: Value[] = [];
      for (let k = start; k < i; k++) values.push(storedValue(readings[k].value));
      const n = i - start;
      this.sql`INSERT INTO telemetry_rows (id, ts, shape, n, vals)
        VALUES (${id}, ${readings[start].ts}, ${shape}, ${n}, ${encodeValue(values)})`;
      id += n;
      start = i;
    }
    this.#nextId = id;
    if (this.#readings !== undefined) this.#readings += readings.length;
    const every = this.retention.everyRows;
    const lastId = id - 1;
    const crossed = Math.floor(lastId / every) > Math.floor((first - 1) / every);
    return { stored: readings.length, pruned: crossed ? this.enforceRetention() : 0 };
  }

  /** Deletes readings older than the age limit and the oldest readings beyond the row limit. Returns readings deleted. */
  enforceRetention(): number {
    const next = this.#next();
    const cutoff = this.now() - this.retention.maxAgeSeconds * 1000;
    let deleted = sum(this.sql<{ n: number }>`DELETE FROM telemetry_rows WHERE ts < ${cutoff} RETURNING n`);
    if (this.#readings !== undefined) this.#readings -= deleted;
    const max = this.retention.maxRows;
    const oldest = this.sql<{ id: number }>`SELECT id FROM telemetry_rows ORDER BY id ASC LIMIT 1`[0];
    // The ids in the table lie in [oldest, next): when that span fits the cap, so do the readings (no count needed).
    if (oldest !== undefined && next - Number(oldest.id) > max) {
      this.#readings ??= sum(this.sql<{ n: number }>`SELECT COALESCE(SUM(n), 0) AS n FROM telemetry_rows`);
      const excess = this.#readings - max;
      if (excess > 0) {
        // The oldest rows holding at least `excess` readings; a row is kept or deleted whole, so at most `max` stay.
        const rows = this.sql<{
          id: number;
          n: number;
        }>`SELECT id, n FROM telemetry_rows ORDER BY id ASC LIMIT ${excess}`;
        let covered = 0;
        let boundary = 0;
        for (const row of rows) {
          covered += Number(row.n);
          boundary = Number(row.id);
          if (covered >= excess) break;
        }
        const byCount = sum(this.sql<{ n: number }>`DELETE FROM telemetry_rows WHERE id <= ${boundary} RETURNING n`);
        this.#readings -= byCount;
        deleted += byCount;
      }
    }
    if (deleted > 0) {
      // The newest row may be gone: keep the next id so that ids are never reused.
      this.sql`INSERT INTO device_meta (key, value) VALUES (${TELEMETRY_NEXT_ID_KEY}, ${encodeValue(next)})
        ON CONFLICT (key) DO UPDATE SET value = excluded.value`;
      this.shapes.prune();
    }
    return deleted;
  }

  /** The id of the newest reading ever stored (0 when none): a mark for `storedAfter`. */
  newestId(): number {
    return this.#next() - 1;
  }

  /**
   * At most `limit` readings stored after the reading with id `afterId`, newest reading first. By storage order
   * rather than by timestamp, so a late reading with an old device timestamp is not missed and none is listed twice.
   */
  storedAfter(afterId: number, limit: number): TelemetryRow[] {
    const n = Math.max(0, Math.min(limit, TELEMETRY_QUERY_MAX_ROWS));
    // A row holds ids [id, id + n): rows with id > afterId - ROW_MAX may still hold readings after the mark.
    const rows = this.sql<StoredRow>`SELECT id, ts, shape, vals FROM telemetry_rows
      WHERE id > ${afterId - TELEMETRY_ROW_MAX_READINGS} AND id + n > ${afterId + 1}
      ORDER BY ts DESC, id DESC LIMIT ${n}`;
    return this.#expand(rows, n, false, null, afterId);
  }

  /** Readings matching `query`, newest first unless `order` is "asc". */
  query(query: TelemetryQuery = {}): TelemetryRow[] {
    return this.queryPage(query).readings;
  }

  /** `query` as a page: the readings and the cursor of the next page. */
  queryPage(query: TelemetryQuery = {}): TelemetryPage {
    const after = query.after;
    const asc = query.order === "asc";
    // A cursor narrows the range to its ts and leaves the rows at that ts to the id test (in SQL for whole rows, in
    // #expand for the readings of a row): a row's readings all have its ts, and ids [id, id + n).
    let from = query.from ?? Number.MIN_SAFE_INTEGER;
    let to = query.to ?? Number.MAX_SAFE_INTEGER;
    if (after !== undefined) {
      if (asc) from = Math.max(from, after.ts);
      else to = Math.min(to, after.ts);
    }
    const cursorTs = after?.ts ?? (asc ? Number.MIN_SAFE_INTEGER : Number.MAX_SAFE_INTEGER);
    const cursorId = after?.id ?? (asc ? Number.MIN_SAFE_INTEGER : Number.MAX_SAFE_INTEGER);
    const limit = Math.max(0, Math.min(query.limit ?? 1000, TELEMETRY_QUERY_MAX_ROWS));
    const metric = query.metric ?? null;
    if (limit === 0 || from > to || (metric !== null && !this.shapes.hasMetric(metric))) {
      return { readings: [], next: null };
    }
    // Literal statements rather than `(? IS NULL OR ...)`, so SQLite can use the (ts, shape) index. A row of a
    // matching shape holds the metric at least once, so `limit` rows always hold `limit` readings when there are;
    // after a cursor, one more, as the row holding the cursor's reading may have none left to give.
    const rowLimit = after === undefined ? limit : limit + 1;
    let rows: StoredRow[];
    if (metric !== null && asc) {
      rows = this.sql<StoredRow>`SELECT id, ts, shape, vals FROM telemetry_rows WHERE ts >= ${from} AND ts <= ${to}
        AND (ts > ${cursorTs} OR id + n - 1 > ${cursorId})
        AND shape IN (SELECT shape FROM telemetry_shape_metrics WHERE metric = ${metric})
        ORDER BY ts ASC, id ASC LIMIT ${rowLimit}`;
    } else if (metric !== null) {
      rows = this.sql<StoredRow>`SELECT id, ts, shape, vals FROM telemetry_rows WHERE ts >= ${from} AND ts <= ${to}
        AND (ts < ${cursorTs} OR id < ${cursorId})
        AND shape IN (SELECT shape FROM telemetry_shape_metrics WHERE metric = ${metric})
        ORDER BY ts DESC, id DESC LIMIT ${rowLimit}`;
    } else if (asc) {
      rows = this.sql<StoredRow>`SELECT id, ts, shape, vals FROM telemetry_rows WHERE ts >= ${from} AND ts <= ${to}
        AND (ts > ${cursorTs} OR id + n - 1 > ${cursorId})
        ORDER BY ts ASC, id ASC LIMIT ${rowLimit}`;
    } else {
      rows = this.sql<StoredRow>`SELECT id, ts, shape, vals FROM telemetry_rows WHERE ts >= ${from} AND ts <= ${to}
        AND (ts < ${cursorTs} OR id < ${cursorId})
        ORDER BY ts DESC, id DESC LIMIT ${rowLimit}`;
    }
    return this.#page(rows, limit, asc, metric, after);
  }

  /** `#expand` for a query: the readings past `after` (in the rows at its ts), and the next page's cursor. */
  #page(
    rows: StoredRow[],
    limit: number,
    asc: boolean,
    metric: string | null,
    after: TelemetryCursor | undefined,
  ): TelemetryPage {
    const ids: number[] = [];
    const readings = this.#expand(rows, limit, asc, metric, 0, after, ids);
    const last = readings.length - 1;
    const next = readings.length === limit && last >= 0 ? { ts: readings[last].ts, id: ids[last] } : null;
    return { readings, next };
  }

  /** Readings stored now. */
  count(): number {
    return sum(this.sql<{ n: number }>`SELECT COALESCE(SUM(n), 0) AS n FROM telemetry_rows`);
  }

  /**
   * Rows to readings in row order (reversed within a row when newest first), filtered, at most `limit`. `afterId`:
   * only readings with a greater id. `cursor`: in the rows at its ts, only readings past it in the query's order.
   * `ids`, when given, gets each returned reading's id.
   */
  #expand(
    rows: StoredRow[],
    limit: number,
    asc: boolean,
    metric: string | null,
    afterId: number,
    cursor?: TelemetryCursor,
    ids?: number[],
  ): TelemetryRow[] {
    const out: TelemetryRow[] = [];
    for (const row of rows) {
      const shape = this.shapes.get(Number(row.shape));
      const decoded = decodeValue(row.vals);
      if (shape === undefined || !Array.isArray(decoded)) continue;
      const n = shape.metrics.length;
      const ts = Number(row.ts);
      const atCursor = cursor !== undefined && ts === cursor.ts;
      for (let j = 0; j < n && out.length < limit; j++) {
        const k = asc ? j : n - 1 - j;
        const id = Number(row.id) + k;
        if (id <= afterId || (metric !== null && shape.metrics[k] !== metric)) continue;
        if (atCursor && (asc ? id <= cursor.id : id >= cursor.id)) continue;
        out.push(reading(shape, k, ts, decoded[k]));
        ids?.push(id);
      }
      if (out.length >= limit) break;
    }
    return out;
  }
}

function reading(shape: TelemetryShape, k: number, ts: number, value: Value | undefined): TelemetryRow {
  const out: TelemetryRow = { ts, metric: shape.metrics[k], value: readValue(value) };
  const unit = shape.units[k];
  if (unit !== null && unit !== undefined) out.unit = unit;
  return out;
}

function sum(rows: ReadonlyArray<{ n: number }>): number {
  let total = 0;
  for (const row of rows) total += Number(row.n);
  return total;
}
