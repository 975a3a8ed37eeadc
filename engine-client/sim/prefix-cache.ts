/**
 * Automatic prefix caching as vLLM does it: the prompt is cut into 16-token blocks, each block is named by
 * the hash of its tokens chained to its parent's hash (so a block matches only with the same prefix before
 * it), and matched blocks are reused from the start of the prompt until the first miss. Capacity is bounded,
 * least recently used blocks are evicted first.
 */
import { createHash } from "node:crypto";

export const BLOCK_SIZE_TOKENS = 16;

export class PrefixCache {
  /** Block hash -> present. Map order is recency: the first key is the least recently used. */
  readonly #blocks = new Map<string, true>();
  /** Prompt tokens looked up and found, as vLLM's prefix_cache_queries / prefix_cache_hits count them. */
  queriedTokens = 0;
  hitTokens = 0;

  constructor(private readonly maxBlocks: number) {}

  get size(): number {
    return this.#blocks.size;
  }

  /**
   * Tokens of `tokens` served from the cache. At least one prompt token is always computed (the model needs
   * a position to produce the first output from), so a fully cached prompt reports one block less.
   */
  lookup(tokens: readonly number[]): number {
    const hashes = this.#matched(tokens);
    this.#touch(hashes);
    const cached = hashes.length * BLOCK_SIZE_TOKENS;
    this.queriedTokens += tokens.length;
    this.hitTokens += cached;
    return cached;
  }

  /** What `lookup` would return, without counting a query or refreshing recency (for scheduling decisions). */
  peek(tokens: readonly number[]): number {
    return this.#matched(tokens).length * BLOCK_SIZE_TOKENS;
  }

  #matched(tokens: readonly number[]): string[] {
    const hashes = blockHashes(tokens, Math.floor((tokens.length - 1) / BLOCK_SIZE_TOKENS));
    const end = hashes.findIndex((hash) => !this.#blocks.has(hash));
    return end === -1 ? hashes : hashes.slice(0, end);
  }

  /** Stores every full block of `tokens` (after their prefill computed them). */
  insert(tokens: readonly number[]): void {
    if (this.maxBlocks === 0) return;
    this.#touch(fullBlockHashes(tokens));
  }

  /**
   * Makes a prompt's blocks the most recently used, its first block last, evicting the least recently used beyond
   * capacity. vLLM frees a request's blocks in reverse order for the same reason: a prompt under pressure loses its
   * tail first and keeps a prefix that still matches. Evicting its first block would strand every later one (held,
   * counted against capacity, never matched again, since a block matches only after its parent).
   */
  #touch(hashes: readonly string[]): void {
    for (let i = hashes.length - 1; i >= 0; i--) {
      this.#blocks.delete(hashes[i]);
      this.#blocks.set(hashes[i], true);
      if (this.#blocks.size > this.maxBlocks) this.#blocks.delete(this.#blocks.keys().next().value as string);
    }
  }

  clear(): void {
    this.#blocks.clear();
  }
}

/** The chained hashes of every full block of `tokens`: what names a prompt's blocks in the KV cache too. */
export function fullBlockHashes(tokens: readonly number[]): string[] {
  return blockHashes(tokens, Math.floor(tokens.length / BLOCK_SIZE_TOKENS));
}

function blockHashes(tokens: readonly number[], count: number): string[] {
  const hashes: string[] = [];
  let parent = "";
  for (let b = 0; b < count; b++) {
    const block = tokens.slice(b * BLOCK_SIZE_TOKENS, (b + 1) * BLOCK_SIZE_TOKENS);
    parent = createHash("sha1").update(parent).update(Uint32Array.from(block)).digest("base64");
    hashes.push(parent);
  }
  return hashes;
}
