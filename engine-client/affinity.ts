/**
 * Session affinity by rendezvous (highest random weight) hashing: an agent always lands on the same replica
 * while that replica is eligible, so its conversation prefix stays in that replica's KV cache; when a replica
 * leaves, only its own agents move, and they come back when it returns.
 */

/** FNV-1a over UTF-16 code units followed by a murmur3 finalizer, for a well-spread 32-bit score. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Orders `candidates` by their rendezvous score for `key`, best first. */
export function rendezvousOrder<T extends { key: string }>(key: string, candidates: readonly T[]): T[] {
  return candidates
    .map((candidate) => ({ candidate, score: hash32(`${key}\u0000${candidate.key}`) }))
    .sort((a, b) => b.score - a.score || (a.candidate.key < b.candidate.key ? -1 : 1))
    .map((entry) => entry.candidate);
}
