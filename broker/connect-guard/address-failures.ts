/**
 * Failed authentications per source address (`addressKey`), as a token bucket: an address may fail `capacity` times in
 * a burst, and one failure is forgiven every `refillMs`. The failure that uses up the allowance blocks the address
 * for `blockMs`: its CONNECTs are then refused without any verification. An address also may not have more
 * verifications running or waiting than failures left (`begin` says no; the connect guard then holds the CONNECT in
 * the address's own line), so a flood from one address never holds more than its allowance of the shared
 * verification queue, and never costs more scrypt work than that before it is blocked.
 */
import type { Clock } from "../clock.ts";
import { TokenBucket } from "../token-bucket.ts";

export interface AddressFailuresOptions {
  /** Failures an address may have in a burst; 0 turns the limit off. */
  capacity: number;
  /** One failure is forgiven every this many ms. */
  refillMs: number;
  /** How long an address that used up its allowance is refused, in ms. */
  blockMs: number;
  clock: Clock;
  /** Addresses remembered at most; those with nothing running and a full allowance are dropped first. */
  maxAddresses: number;
}

interface AddressState {
  bucket: TokenBucket;
  /** Refused until then (the clock's monotonicNow, so a wall clock step neither ends nor stretches it); 0: never. */
  blockedUntilMs: number;
  /** Verifications of this address running or waiting for a turn. */
  pending: number;
}

export class AddressFailures {
  readonly #options: AddressFailuresOptions;
  /** Insertion order is the order of last activity (a failure or a start moves an address to the end). */
  readonly #states = new Map<string, AddressState>();

  constructor(options: AddressFailuresOptions) {
    this.#options = options;
  }

  get #enabled(): boolean {
    return this.#options.capacity > 0;
  }

  /** Until when (the clock's monotonicNow) the address is refused; undefined when it is not blocked now. */
  blockedUntil(key: string): number | undefined {
    const state = this.#states.get(key);
    if (state === undefined || state.blockedUntilMs <= this.#options.clock.monotonicNow()) return undefined;
    return state.blockedUntilMs;
  }

  /** Starts one verification for the address; false (nothing started) when it has as many pending as failures left. */
  begin(key: string): boolean {
    if (!this.#enabled) return true;
    const state = this.#touch(key);
    if (state.pending >= Math.floor(state.bucket.available())) {
      this.#forgetIfIdle(key, state);
      return false;
    }
    state.pending++;
    return true;
  }

  /** True while the address has a verification running or waiting, whose end may let another begin. */
  hasPending(key: string): boolean {
    return (this.#states.get(key)?.pending ?? 0) > 0;
  }

  /** Ends a verification `begin` started; a failure takes one from the allowance, and blocks on the last one. */
  end(key: string, failed: boolean): void {
    if (!this.#enabled) return;
    const state = this.#states.get(key);
    if (state === undefined) return;
    state.pending = Math.max(0, state.pending - 1);
    if (failed) {
      const now = this.#options.clock.monotonicNow();
      state.bucket.take(now);
      if (state.bucket.available(now) < 1) state.blockedUntilMs = now + this.#options.blockMs;
    }
    this.#forgetIfIdle(key, state);
  }

  /** Addresses remembered now. */
  get size(): number {
    return this.#states.size;
  }

  #touch(key: string): AddressState {
    let state = this.#states.get(key);
    if (state !== undefined) {
      this.#states.delete(key);
      this.#states.set(key, state);
      return state;
    }
    if (this.#states.size >= this.#options.maxAddresses) this.#makeRoom();
    const { capacity, refillMs, clock } = this.#options;
    state = { bucket: new TokenBucket(capacity, 1000 / refillMs, clock), blockedUntilMs: 0, pending: 0 };
    this.#states.set(key, state);
    return state;
  }

  /** An address with nothing pending, not blocked and its allowance full is as good as never seen. */
  #forgetIfIdle(key: string, state: AddressState): void {
    if (state.pending > 0 || state.blockedUntilMs > this.#options.clock.monotonicNow()) return;
    if (state.bucket.isFull()) this.#states.delete(key);
  }

  #makeRoom(): void {
    for (const [key, state] of this.#states) this.#forgetIfIdle(key, state);
    if (this.#states.size < this.#options.maxAddresses) return;
    // Still full (a flood from very many addresses): the least recently active address without pending work goes,
    // which at worst gives that address a fresh allowance.
    for (const [key, state] of this.#states) {
      if (state.pending === 0) {
        this.#states.delete(key);
        return;
      }
    }
  }
}
