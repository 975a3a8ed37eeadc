/**
 * How sure a median is: a percentile bootstrap of the median of per-pair differences (issue #5's paired latency).
 * Two builds measured in one run differ by less than one run's p50 moves between runs, so a difference is reported
 * with the interval it could lie in, not as a bare number. Deterministic: the resamples are drawn by `unitOf`
 * (length-plan.ts) from the resample and draw numbers alone, so the same values give the same interval.
 */
import { percentile } from "../percentile.ts";
import { unitOf } from "./length-plan.ts";

/** The bootstrap's own stream of `unitOf`, apart from the answer lengths' (0) and the think times'. */
const BOOTSTRAP_STREAM = 7;

/** A median and its 95% percentile-bootstrap interval. */
export interface MedianWithInterval {
  p50: number;
  /** 2.5th and 97.5th percentiles of the medians of `resamples` resamples (with replacement) of the values. */
  ci95: [number, number];
}

/**
 * The median of `values` and its bootstrap interval over `resamples` resamples. NaN for no values.
 *
 * @example
 * medianWithInterval([1, 2, 3, 4, 5]).p50; // 3
 */
export function medianWithInterval(values: readonly number[], resamples = 2000): MedianWithInterval {
  if (values.length === 0) return { p50: Number.NaN, ci95: [Number.NaN, Number.NaN] };
  const medians: number[] = [];
  const sample = new Array<number>(values.length);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < values.length; i++) {
      sample[i] = values[Math.floor(unitOf(r, i, BOOTSTRAP_STREAM) * values.length)];
    }
    medians.push(percentile(sample, 50));
  }
  return { p50: percentile([...values], 50), ci95: [percentile(medians, 2.5), percentile(medians, 97.5)] };
}
