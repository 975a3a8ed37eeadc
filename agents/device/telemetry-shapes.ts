/**
 * Telemetry shapes: the ordered list of (metric, unit) pairs one stored telemetry row carries. A device sends the same
 * readings in every frame, so a row stores only a shape id and its values, and the names are written once per shape
 * instead of once per reading (issue #6: fewer bytes and B-tree pages per commit). `telemetry_shape_metrics` maps a
 * metric to the shapes that hold it, so a per-metric query selects rows by shape inside the time index.
 *
 * Both caches are bounded and dropped on rollback: a shape created by a rolled-back event is gone from the database.
 */
import type { SqlTag } from "./sql.ts";

/** One shape: metric names in row order, with the unit of each (null when none). */
export interface TelemetryShape {
  id: number;
  metrics: readonly string[];
  units: ReadonlyArray<string | null>;
}

/** Entries kept in each cache; a device with more distinct shapes than this reads the rest from SQLite. */
const CACHE_MAX = 256;
/** Shape count above which retention also deletes the shapes no row uses any more. */
export const SHAPES_PRUNE_AT = 64;

/** A reading's name and unit, as the shape key needs them. */
export interface NamedUnit {
  metric: string;
  unit?: string;
}

/** The stored spec of a shape: JSON of `[[metric, unit | null], ...]`; it is also the lookup key. */
export function shapeSpec(readings: readonly NamedUnit[], from = 0, to = readings.length): string {
  const pairs: Array<[string, string | null]> = [];
  for (let i = from; i < to; i++) pairs.push([readings[i].metric, readings[i].unit ?? null]);
  return JSON.stringify(pairs);
}

function parseSpec(id: number, spec: string): TelemetryShape {
  const pairs = JSON.parse(spec) as Array<[string, string | null]>;
  return { id, metrics: pairs.map((p) => p[0]), units: pairs.map((p) => p[1]) };
}

/** Reads and creates shapes. */
export class TelemetryShapes {
  readonly #idBySpec = new Map<string, number>();
  readonly #byId = new Map<number, TelemetryShape>();
  /** The shape of the last frame stored: a device repeats it, and comparing names is cheaper than building a key. */
  #last: TelemetryShape | undefined;

  constructor(private readonly sql: SqlTag) {}

  /** The id of the shape of `readings[from..to)`, created (with its metric index rows) when new. */
  idForReadings(readings: readonly NamedUnit[], from: number, to: number): number {
    const last = this.#last;
    if (last !== undefined && last.metrics.length === to - from) {
      let same = true;
      for (let i = from; i < to && same; i++) {
        same = readings[i].metric === last.metrics[i - from] && (readings[i].unit ?? null) === last.units[i - from];
      }
      if (same) return last.id;
    }
    const id = this.idFor(shapeSpec(readings, from, to));
    const metrics: string[] = [];
    const units: Array<string | null> = [];
    for (let i = from; i < to; i++) {
      metrics.push(readings[i].metric);
      units.push(readings[i].unit ?? null);
    }
    this.#last = { id, metrics, units };
    return id;
  }

  /** The id of the shape with `spec`, created (with its metric index rows) when new. */
  idFor(spec: string): number {
    const cached = this.#idBySpec.get(spec);
    if (cached !== undefined) return cached;
    const found = this.sql<{ id: number }>`SELECT id FROM telemetry_shapes WHERE spec = ${spec}`;
    let id: number;
    if (found.length > 0) id = Number(found[0].id);
    else {
      id = Number(this.sql<{ id: number }>`INSERT INTO telemetry_shapes (spec) VALUES (${spec}) RETURNING id`[0].id);
      for (const metric of new Set(parseSpec(id, spec).metrics)) {
        this.sql`INSERT INTO telemetry_shape_metrics (metric, shape) VALUES (${metric}, ${id})`;
      }
    }
    if (this.#idBySpec.size >= CACHE_MAX) this.#idBySpec.clear();
    this.#idBySpec.set(spec, id);
    return id;
  }

  /** The shape `id`; undefined when no such shape is stored (a row never points at one). */
  get(id: number): TelemetryShape | undefined {
    const cached = this.#byId.get(id);
    if (cached !== undefined) return cached;
    const rows = this.sql<{ spec: string }>`SELECT spec FROM telemetry_shapes WHERE id = ${id}`;
    if (rows.length === 0) return undefined;
    const shape = parseSpec(id, rows[0].spec);
    if (this.#byId.size >= CACHE_MAX) this.#byId.clear();
    this.#byId.set(id, shape);
    return shape;
  }

  /** True when some stored shape holds `metric`. */
  hasMetric(metric: string): boolean {
    return this.sql`SELECT 1 FROM telemetry_shape_metrics WHERE metric = ${metric} LIMIT 1`.length > 0;
  }

  /**
   * Deletes the shapes no telemetry row uses, once there are more than SHAPES_PRUNE_AT of them (a device whose
   * readings keep changing names would otherwise grow the table without bound). Returns shapes deleted.
   */
  prune(): number {
    const count = Number(this.sql<{ n: number }>`SELECT COUNT(*) AS n FROM telemetry_shapes`[0]?.n ?? 0);
    if (count <= SHAPES_PRUNE_AT) return 0;
    this.sql`DELETE FROM telemetry_shape_metrics WHERE shape NOT IN (SELECT shape FROM telemetry_rows)`;
    const gone = this.sql`DELETE FROM telemetry_shapes WHERE id NOT IN (SELECT shape FROM telemetry_rows) RETURNING id`;
    if (gone.length > 0) this.invalidate();
    return gone.length;
  }

  /** Forgets the caches (after a rolled-back event, or after pruning). */
  invalidate(): void {
    this.#last = undefined;
    this.#idBySpec.clear();
    this.#byId.clear();
  }
}
