/**
 * The device's metric alias table (hello `metrics`, as in a Sparkplug B birth certificate): metric names in alias
 * order, so that telemetry can carry readings by position (`rv`) instead of repeating the names in every frame.
 *
 * Kept in `device_meta` and so across sessions, hibernation and restarts: a constrained device that declared its
 * table once can keep sending `rv` after a reconnect without saying hello again. A hello without `metrics` leaves the
 * table as it is; a hello with `metrics` replaces it whole (aliases are never patched, so the positions the device
 * uses and the ones stored can only disagree when the firmware changed its table without declaring it).
 */
import type { Value, ValueMap } from "../../codecs/frames.ts";
import type { SqlTag } from "./sql.ts";
import { decodeValue, encodeValue } from "./values.ts";

const META_KEY = "metric_aliases";

/** Reads and replaces the alias table row. */
export class MetricAliasStore {
  /** Telemetry with `rv` reads the table on every frame: cached; undefined = not read yet, null = none declared. */
  #table: readonly string[] | null | undefined;

  constructor(private readonly sql: SqlTag) {}

  /** The last declared table, or null when the device never declared one. */
  table(): readonly string[] | null {
    if (this.#table === undefined) {
      const rows = this.sql<{ value: Uint8Array | null }>`SELECT value FROM device_meta WHERE key = ${META_KEY}`;
      const stored = rows.length > 0 ? decodeValue(rows[0].value) : null;
      this.#table =
        Array.isArray(stored) && stored.length > 0 && stored.every((n) => typeof n === "string")
          ? (stored as string[])
          : null;
    }
    return this.#table;
  }

  /** Replaces the table (the codecs already checked the names: 1 to 256, distinct, 1 to 128 characters). */
  replace(metrics: readonly string[]): void {
    const value: Value = [...metrics];
    this.sql`INSERT INTO device_meta (key, value) VALUES (${META_KEY}, ${encodeValue(value)})
      ON CONFLICT (key) DO UPDATE SET value = excluded.value`;
    this.#table = [...metrics];
  }

  /** Forgets the cached table (after a rolled-back event). */
  invalidate(): void {
    this.#table = undefined;
  }
}

/** The result of resolving positional readings against a table. */
export type AliasResolution =
  | { ok: true; readings: ValueMap }
  | { ok: false; code: "BRIDGE_ERR_TELEMETRY_ALIASES_UNKNOWN"; message: string };

/**
 * Turns `rv` into readings by name: `rv[i]` is a reading of `table[i]`; nulls (no reading this time) are left out.
 * Refused whole, never guessed, when there is no table or `rv` is longer than it: the device and the agent disagree
 * about the table, and the fix on the device is the same in both cases (say hello with `metrics` again).
 */
export function resolveAliases(rv: readonly Value[], table: readonly string[] | null): AliasResolution {
  if (table === null) {
    return {
      ok: false,
      code: "BRIDGE_ERR_TELEMETRY_ALIASES_UNKNOWN",
      message: "telemetry rv needs a metric alias table: send hello with metrics first",
    };
  }
  if (rv.length > table.length) {
    return {
      ok: false,
      code: "BRIDGE_ERR_TELEMETRY_ALIASES_UNKNOWN",
      message: `telemetry rv holds ${rv.length} readings but the alias table names ${table.length} metrics: send hello with metrics again`,
    };
  }
  const readings: ValueMap = {};
  for (let i = 0; i < rv.length; i++) {
    const value = rv[i];
    // The codecs refuse __proto__ as a name; skipped here too, so a hand-edited row cannot reach the prototype.
    if (value !== null && value !== undefined && table[i] !== "__proto__") readings[table[i]] = value;
  }
  return { ok: true, readings };
}
