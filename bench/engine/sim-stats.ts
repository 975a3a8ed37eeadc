/**
 * The engine simulator's prefill counters, read over HTTP (`GET /admin/stats`) before and after a benchmark run:
 * how many sequences shared one prefill step shows whether a closed loop phase-locked into cohorts (length-plan.ts).
 */
import type { EngineSimStats } from "../../engine-client/sim/index.ts";

export type PrefillCounters = Pick<EngineSimStats, "prefillSteps" | "admittedSequences">;

/** The simulator at `simUrl`'s counters now. */
export async function readPrefillCounters(simUrl: string): Promise<PrefillCounters> {
  const res = await fetch(`${simUrl}/admin/stats`);
  if (!res.ok) throw new Error(`GET /admin/stats answered ${res.status}`);
  const stats = (await res.json()) as Partial<EngineSimStats>;
  const { prefillSteps, admittedSequences } = stats;
  if (typeof prefillSteps !== "number" || typeof admittedSequences !== "number") {
    throw new Error("GET /admin/stats has no prefillSteps or admittedSequences (a simulator older than this bench?)");
  }
  return { prefillSteps, admittedSequences };
}

/** Sequences admitted per prefill step between two readings; NaN when no step admitted any. */
export function sequencesPerPrefillStep(before: PrefillCounters, after: PrefillCounters): number {
  const steps = after.prefillSteps - before.prefillSteps;
  return steps > 0 ? (after.admittedSequences - before.admittedSequences) / steps : Number.NaN;
}
