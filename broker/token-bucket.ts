/**
 * A token bucket on an injected clock's monotonic reading: `ratePerSec` tokens refill continuously up to `capacity`,
 * and a step of the wall clock neither stalls nor fills it.
 */
import type { Clock } from "./clock.ts";

export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly capacity: number,
    private readonly ratePerSec: number,
    private readonly clock: Clock,
  ) {
    this.tokens = capacity;
    this.updatedAt = clock.monotonicNow();
  }

  private refill(now: number): void {
    // An injected clock that went backwards anyway must not take tokens away, hence max(0, ...).
    this.tokens = Math.min(this.capacity, this.tokens + (Math.max(0, now - this.updatedAt) * this.ratePerSec) / 1000);
    this.updatedAt = now;
  }

  /**
   * Takes one token; false when the bucket is empty (the caller refuses the message). `nowMs` (monotonicNow) saves a
   * clock read when the caller has just read the same clock.
   */
  take(nowMs: number = this.clock.monotonicNow()): boolean {
    this.refill(nowMs);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Tokens in the bucket now (after refilling), possibly fractional. */
  available(nowMs: number = this.clock.monotonicNow()): number {
    this.refill(nowMs);
    return this.tokens;
  }

  /** True when the bucket has refilled completely: forgetting it changes nothing. */
  isFull(): boolean {
    this.refill(this.clock.monotonicNow());
    return this.tokens >= this.capacity;
  }
}

/**
 * Token buckets by device id, kept across sessions so reconnecting does not refill a flooding device's bucket.
 * Buckets of devices without a session are forgotten once full again (then a new one is identical).
 */
export class DeviceRateLimits {
  /** The device's bucket and how many of its sessions hold it. */
  private readonly buckets = new Map<string, { bucket: TokenBucket; sessions: number }>();

  constructor(
    private readonly capacity: number,
    private readonly ratePerSec: number,
    private readonly clock: Clock,
    /** Above this many remembered devices, idle full buckets are pruned. */
    private readonly pruneAbove: number,
  ) {}

  /** The device's bucket, for a new session. Pair with `release`. */
  acquire(deviceId: string): TokenBucket {
    let entry = this.buckets.get(deviceId);
    if (!entry) {
      if (this.buckets.size >= this.pruneAbove) this.prune();
      entry = { bucket: new TokenBucket(this.capacity, this.ratePerSec, this.clock), sessions: 0 };
      this.buckets.set(deviceId, entry);
    }
    entry.sessions++;
    return entry.bucket;
  }

  /** A session of the device ended. */
  release(deviceId: string): void {
    const entry = this.buckets.get(deviceId);
    if (!entry) return;
    entry.sessions = Math.max(0, entry.sessions - 1);
    if (entry.sessions === 0 && entry.bucket.isFull()) this.buckets.delete(deviceId);
  }

  private prune(): void {
    for (const [id, entry] of this.buckets) {
      if (entry.sessions === 0 && entry.bucket.isFull()) this.buckets.delete(id);
    }
  }

  /** Devices with a remembered bucket (for tests and metrics). */
  get size(): number {
    return this.buckets.size;
  }
}
