/**
 * The KV cache's capacity in 16-token blocks and what the running sequences hold of it, for vLLM's usage gauge
 * (`vllm:kv_cache_usage_perc`: blocks in use over all blocks) and for admission: as in vLLM's scheduler, a waiting
 * sequence is admitted only when its blocks fit, so a full cache makes requests wait.
 *
 * A sequence's full prompt blocks are named by the prefix cache's chained hashes and held once however many running
 * sequences share that prefix, as vLLM shares a cached prefix's blocks; the rest (the partial last prompt block and
 * its output) are its own. One difference: vLLM allocates blocks as a sequence grows and preempts a running sequence
 * when it runs out, while the simulator reserves a sequence's whole length (prompt and output) at admission, so it
 * never preempts. The gauge still counts only the blocks filled so far, as vLLM's does.
 */
import { BLOCK_SIZE_TOKENS, fullBlockHashes } from "./prefix-cache.ts";

/** What one sequence holds. */
export interface KvHold {
  /** Hashes of its full prompt blocks, shared with every sequence holding the same prefix. */
  readonly shared: readonly string[];
  /** Blocks reserved for itself: the rest of its prompt and its whole output. */
  readonly own: number;
  /** Tokens filled so far (prompt and generated): the blocks in use are those they cover. */
  readonly filledTokens: () => number;
}

/** Blocks covering `tokens` tokens. */
function blocksFor(tokens: number): number {
  return Math.ceil(tokens / BLOCK_SIZE_TOKENS);
}

export class KvCache {
  /** Shared block hash -> sequences holding it. */
  readonly #shared = new Map<string, number>();
  readonly #holds = new Set<KvHold>();
  #ownReserved = 0;
  /** Prompt block hashes, computed once per prompt: a sequence waiting for room is checked at every step. */
  readonly #hashes = new WeakMap<readonly number[], readonly string[]>();

  constructor(readonly capacity: number) {}

  /** Blocks reserved: the distinct shared prompt blocks and every sequence's own. */
  get reserved(): number {
    return this.#shared.size + this.#ownReserved;
  }

  /** Blocks in use now: the distinct shared prompt blocks and the own blocks filled so far. */
  get used(): number {
    let blocks = this.#shared.size;
    for (const hold of this.#holds) blocks += blocksFor(hold.filledTokens()) - hold.shared.length;
    return blocks;
  }

  /** What vLLM's gauge reports: a fraction, 1 meaning every block is in use. */
  get usage(): number {
    return this.used / this.capacity;
  }

  /**
   * Reserves blocks for a sequence of `promptTokens` that will reach `totalTokens`; undefined when they do not fit in
   * what is left. `force` reserves anyway (an empty engine always admits its first waiting sequence, so no request is
   * held back forever; the options make every request the API accepts fit an empty cache).
   */
  hold(
    promptTokens: readonly number[],
    totalTokens: number,
    filledTokens: () => number,
    force: boolean,
  ): KvHold | undefined {
    const shared = this.#hashesOf(promptTokens);
    const own = blocksFor(totalTokens) - shared.length;
    let fresh = 0;
    for (const hash of shared) if (!this.#shared.has(hash)) fresh++;
    if (!force && this.reserved + fresh + own > this.capacity) return undefined;
    for (const hash of shared) this.#shared.set(hash, (this.#shared.get(hash) ?? 0) + 1);
    this.#ownReserved += own;
    const hold: KvHold = { shared, own, filledTokens };
    this.#holds.add(hold);
    return hold;
  }

  /** Frees what `hold` reserved; a second call does nothing. */
  release(hold: KvHold | undefined): void {
    if (hold === undefined || !this.#holds.delete(hold)) return;
    this.#ownReserved -= hold.own;
    for (const hash of hold.shared) {
      const holders = (this.#shared.get(hash) ?? 1) - 1;
      if (holders === 0) this.#shared.delete(hash);
      else this.#shared.set(hash, holders);
    }
  }

  clear(): void {
    this.#shared.clear();
    this.#holds.clear();
    this.#ownReserved = 0;
  }

  #hashesOf(promptTokens: readonly number[]): readonly string[] {
    let hashes = this.#hashes.get(promptTokens);
    if (hashes === undefined) {
      hashes = fullBlockHashes(promptTokens);
      this.#hashes.set(promptTokens, hashes);
    }
    return hashes;
  }
}
