/**
 * Recently verified device credentials, so a device reconnecting with the secret that last verified skips scrypt.
 * scrypt costs tens of ms of thread-pool CPU per CONNECT by design (secrets at rest must be slow to brute-force); a
 * reconnect storm of 10,000 devices after a network blip would otherwise take minutes. What is kept is not the
 * secret: an HMAC-SHA256 of it under a key drawn at random when the process starts (never stored, never logged), with
 * the stored scrypt hash it was checked against, so a secret rotated or a device removed and re-added, even by
 * another process sharing the registry file, misses at once. Security reasoning: docs/broker.md, "Credential cache".
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Clock } from "../clock.ts";

/** Options of `CredentialCache`. */
export interface CredentialCacheOptions {
  /** How long a verification is remembered, in ms; 0 turns the cache off. */
  ttlMs: number;
  /** At most this many devices are remembered; the least recently verified goes first. */
  maxEntries: number;
  clock: Clock;
  /** The HMAC key. Default: 32 random bytes per process (tests pass their own). */
  key?: Buffer;
}

interface Entry {
  /** The stored scrypt hash the secret was verified against. */
  storedHash: string;
  mac: Buffer;
  /** On the clock's monotonicNow: a step of the wall clock neither keeps nor drops an entry. */
  expiresAtMs: number;
}

export class CredentialCache {
  readonly #key: Buffer;
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #clock: Clock;
  /** Insertion order is recency: a hit moves its entry to the end, eviction takes the first. */
  readonly #entries = new Map<string, Entry>();

  constructor(options: CredentialCacheOptions) {
    this.#key = options.key ?? randomBytes(32);
    this.#ttlMs = options.ttlMs;
    this.#maxEntries = options.maxEntries;
    this.#clock = options.clock;
  }

  #mac(secret: string): Buffer {
    return createHmac("sha256", this.#key).update(secret, "utf8").digest();
  }

  /**
   * True when `secret` is the one that last verified for `id` against the same `storedHash`, within the TTL.
   * Compared in constant time. A false answer means "verify with scrypt", never "wrong".
   */
  has(id: string, storedHash: string, secret: string): boolean {
    const entry = this.#entries.get(id);
    if (entry === undefined) return false;
    if (entry.storedHash !== storedHash || entry.expiresAtMs <= this.#clock.monotonicNow()) {
      this.#entries.delete(id);
      return false;
    }
    if (!timingSafeEqual(entry.mac, this.#mac(secret))) return false;
    this.#entries.delete(id);
    this.#entries.set(id, entry);
    return true;
  }

  /** Remembers a secret that scrypt just verified against `storedHash`. */
  remember(id: string, storedHash: string, secret: string): void {
    if (this.#ttlMs <= 0 || this.#maxEntries <= 0) return;
    this.#entries.delete(id);
    while (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
    }
    this.#entries.set(id, {
      storedHash,
      mac: this.#mac(secret),
      expiresAtMs: this.#clock.monotonicNow() + this.#ttlMs,
    });
  }

  /** Forgets a device (its secret was rotated or it was removed). */
  forget(id: string): void {
    this.#entries.delete(id);
  }

  clear(): void {
    this.#entries.clear();
  }

  /** Devices remembered now. */
  get size(): number {
    return this.#entries.size;
  }
}
