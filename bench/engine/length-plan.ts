/**
 * Answer lengths of the engine benchmark's closed loop. With every answer the same length, the sequences the
 * simulator admits in one step all finish in one step; direct callers resubmit within a fraction of a millisecond, so
 * they are admitted together again and the loop phase-locks into cohorts that share one prefill step, while the
 * bridge's few milliseconds of turnaround split them and more steps pay a prefill (issue #5). Real fleets never ask
 * for equal lengths. So the k-th request of worker w asks for a length drawn from a PRNG seeded by (w, k) only: the
 * same in every mode and every round, with no Math.random and no clock.
 */

/** The lengths a run asks for. */
export interface LengthPlan {
  /** Mean length, tokens (`--output-tokens`). */
  readonly meanTokens: number;
  /** Half-width of the range as a fraction of the mean (`--length-spread`); 0 asks for the mean every time. */
  readonly spread: number;
  /** The shortest and the longest length it can ask for. */
  readonly minTokens: number;
  readonly maxTokens: number;
  /** `max_tokens` of the `k`-th request (from 0) of worker `worker` in a run. */
  lengthOf(worker: number, k: number): number;
}

/**
 * Lengths uniform in [round(mean x (1 - spread)), round(mean x (1 + spread))]; throws for a spread outside [0, 1)
 * or a range whose shortest length is under one token.
 *
 * @example
 * const plan = lengthPlan(64, 0.5); // 32 to 96 tokens
 * plan.lengthOf(3, 0) === lengthPlan(64, 0.5).lengthOf(3, 0); // true
 */
export function lengthPlan(meanTokens: number, spread: number): LengthPlan {
  if (!Number.isSafeInteger(meanTokens) || meanTokens < 1) {
    throw new Error(`--output-tokens must be a positive integer, got ${meanTokens}`);
  }
  if (!Number.isFinite(spread) || spread < 0 || spread >= 1) {
    throw new Error(`--length-spread must be at least 0 and below 1, got ${spread}`);
  }
  const minTokens = Math.round(meanTokens * (1 - spread));
  const maxTokens = Math.round(meanTokens * (1 + spread));
  if (minTokens < 1) {
    throw new Error(`--length-spread ${spread} with --output-tokens ${meanTokens} allows answers of 0 tokens`);
  }
  const width = maxTokens - minTokens + 1;
  return {
    meanTokens,
    spread,
    minTokens,
    maxTokens,
    lengthOf: (worker, k) => minTokens + Math.floor(unitOf(worker, k) * width),
  };
}

/**
 * A number in [0, 1) that depends only on (worker, k) and `stream` (0 for the lengths; another value draws numbers
 * independent of them from the same pair): one splitmix32-style mix of all three.
 */
export function unitOf(worker: number, k: number, stream = 0): number {
  let t = (Math.imul(worker + 1, 0x9e3779b1) ^ Math.imul(k + 1, 0x85ebca77) ^ Math.imul(stream, 0xc2b2ae3d)) >>> 0;
  t = Math.imul(t ^ (t >>> 16), 0x21f0aaad);
  t = Math.imul(t ^ (t >>> 15), 0x735a2d97);
  return ((t ^ (t >>> 15)) >>> 0) / 4294967296;
}
