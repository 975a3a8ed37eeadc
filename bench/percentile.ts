/**
 * The one percentile rule of every benchmark suite: nearest rank. Percentile p of n values is the value at rank
 * ceil(p/100 * n) in ascending order (1-based), so it is always a value that was measured, p50 of an even count is
 * the lower middle, and p99 of 100 values is the 99th, not the largest. One rule, so a p99 or a median in one suite's
 * table means what it means in another's.
 */

/** Nearest-rank percentile `p` (0 to 100) of `sorted`, which is in ascending order; NaN when there are no values. */
export function percentileOfSorted(sorted: ArrayLike<number>, p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be from 0 to 100, got ${p}`);
  if (sorted.length === 0) return Number.NaN;
  // p * n before the division: (p / 100) * n can land just above a whole rank (0.07 * 100 is 7.000000000000001).
  const rank = Math.ceil((p * sorted.length) / 100);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** Nearest-rank percentile `p` (0 to 100) of `values`, in any order (they are not changed); NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  return percentileOfSorted(
    [...values].sort((a, b) => a - b),
    p,
  );
}

/** The median by the same rule: percentile 50 (the lower middle of an even count). */
export function median(values: readonly number[]): number {
  return percentile(values, 50);
}
