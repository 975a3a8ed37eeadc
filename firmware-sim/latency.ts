/**
 * A log-bucketed latency histogram (like HdrHistogram with ~4% resolution): constant memory whatever the number of
 * samples, so a run of millions of publishes can still report p50 / p99.
 */

const BUCKETS_PER_DOUBLING = 16;
const MAX_BUCKET = BUCKETS_PER_DOUBLING * 40;

/** Percentiles of a histogram, in milliseconds. */
export interface LatencySummary {
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

/** Records durations in milliseconds and answers percentiles. */
export class LatencyHistogram {
  readonly #counts = new Uint32Array(MAX_BUCKET + 1);
  #count = 0;
  #sumMs = 0;
  #maxMs = 0;

  record(ms: number): void {
    const value = Math.max(0, ms);
    this.#counts[bucketOf(value)]++;
    this.#count++;
    this.#sumMs += value;
    if (value > this.#maxMs) this.#maxMs = value;
  }

  get count(): number {
    return this.#count;
  }

  /** The value at quantile `q` (0..1), as the upper bound of its bucket, never above the largest sample. */
  quantile(q: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    for (let bucket = 0; bucket <= MAX_BUCKET; bucket++) {
      seen += this.#counts[bucket];
      if (seen >= rank) return Math.min(this.#maxMs, upperBoundOf(bucket));
    }
    return this.#maxMs;
  }

  summary(): LatencySummary {
    const round = (ms: number) => Math.round(ms * 100) / 100;
    return {
      count: this.#count,
      p50Ms: round(this.quantile(0.5)),
      p90Ms: round(this.quantile(0.9)),
      p99Ms: round(this.quantile(0.99)),
      maxMs: round(this.#maxMs),
      meanMs: this.#count === 0 ? 0 : round(this.#sumMs / this.#count),
    };
  }
}

// Bucket 0 holds [0, 0.1) ms; above that, 16 buckets per doubling starting at 0.1 ms.
function bucketOf(ms: number): number {
  if (ms < 0.1) return 0;
  const bucket = 1 + Math.floor(Math.log2(ms / 0.1) * BUCKETS_PER_DOUBLING);
  return Math.min(MAX_BUCKET, bucket);
}

function upperBoundOf(bucket: number): number {
  if (bucket === 0) return 0.1;
  return 0.1 * 2 ** (bucket / BUCKETS_PER_DOUBLING);
}
