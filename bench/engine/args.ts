/** Command-line options and per-mode summaries shared by the engine benchmarks (index.ts, bridge.ts, overhead.ts). */
import { median, percentileOfSorted } from "../percentile.ts";

export { flag, option } from "../cli-args.ts";

/**
 * One result per mode and concurrency from its rounds: each number field's median over `rows` (so the figures of one
 * result may come from different rounds), every other field as in the first. Rows of one mode and concurrency only.
 */
export function medianOfRounds<T extends object>(rows: readonly T[]): T {
  const out = { ...rows[0] };
  for (const key of Object.keys(out) as Array<keyof T>) {
    if (typeof out[key] === "number") out[key] = median(rows.map((r) => r[key] as number)) as T[keyof T];
  }
  return out;
}

/** The p50 and p99 of `values` (nearest rank), sorting once. */
export function p50p99(values: number[]): { p50: number; p99: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentileOfSorted(sorted, 50), p99: percentileOfSorted(sorted, 99) };
}
