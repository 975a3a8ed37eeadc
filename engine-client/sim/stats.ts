/** The simulator's counters, for `stats()` and `GET /admin/stats`. */
import type { SimContext } from "./context.ts";

export interface EngineSimStats {
  running: number;
  waiting: number;
  /** Requests by outcome among the recorded ones. */
  outcomes: Record<string, number>;
  promptTokens: number;
  generationTokens: number;
  /** Prompt tokens looked up in the prefix cache, and those found. */
  prefixCacheQueries: number;
  prefixCacheHits: number;
  prefixCacheBlocks: number;
  /** KV-cache blocks the running sequences hold now, and that over the capacity (`vllm:kv_cache_usage_perc`). */
  kvCacheBlocks: number;
  kvCacheUsage: number;
  /** `GET /health` requests received (answered or, under the `stall` fault, not). */
  healthChecks: number;
  /** Engine steps run and their modelled duration (unscaled). */
  steps: number;
  modelledMs: number;
  /**
   * Steps that admitted at least one sequence (each pays a prefill on top of its decode), and the sequences they
   * admitted: their ratio is how many sequences share one prefill step.
   */
  prefillSteps: number;
  admittedSequences: number;
}

export function simStats(ctx: SimContext): EngineSimStats {
  const outcomes: Record<string, number> = {};
  for (const record of ctx.records) outcomes[record.outcome] = (outcomes[record.outcome] ?? 0) + 1;
  return {
    running: ctx.scheduler.running,
    waiting: ctx.scheduler.waiting,
    outcomes,
    promptTokens: ctx.metrics.promptTokens,
    generationTokens: ctx.metrics.generationTokens,
    prefixCacheQueries: ctx.cache.queriedTokens,
    prefixCacheHits: ctx.cache.hitTokens,
    prefixCacheBlocks: ctx.cache.size,
    kvCacheBlocks: ctx.scheduler.kvCacheBlocks,
    kvCacheUsage: ctx.scheduler.kvCacheUsage,
    healthChecks: ctx.healthChecks,
    steps: ctx.scheduler.steps,
    modelledMs: ctx.scheduler.modelledMs,
    prefillSteps: ctx.scheduler.prefillSteps,
    admittedSequences: ctx.scheduler.admittedSequences,
  };
}
