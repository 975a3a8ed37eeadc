/**
 * Think time of the engine benchmark's closed loop (`--think-ms`). Without it each device asks again the moment its
 * answer ends, so the closed loop's requests arrive in step with the simulator's steps: every answer that ends in a
 * step is followed by its next question while the simulator writes that step's tokens, and a direct caller's question
 * (one hop away) is still in time for the next step's admission where a relayed one (two hops and a busy relay later)
 * may wait a whole step more (issue #5, 256 devices). Real devices ask at times of their own. With a think time each
 * request waits a pause drawn uniformly from [0, thinkMs) first, by a PRNG seeded with (worker, k) alone, so every mode
 * waits the same pauses, and arrivals fall at any point of a step. Latencies are timed from the request's send, so the
 * pause is in none of them; it is in the run's wall time, the same for every mode.
 */
import { unitOf } from "./length-plan.ts";

/** The PRNG stream of the pauses: independent of the lengths drawn from the same (worker, k). */
const THINK_STREAM = 1;

/** Milliseconds the `k`-th request (from 0) of worker `worker` waits before it is sent; 0 when `thinkMs` is 0. */
export function thinkMsOf(thinkMs: number, worker: number, k: number): number {
  return thinkMs === 0 ? 0 : unitOf(worker, k, THINK_STREAM) * thinkMs;
}

/** Throws for a think time that is not a finite number of ms >= 0. */
export function checkThinkMs(thinkMs: number): number {
  if (!Number.isFinite(thinkMs) || thinkMs < 0) throw new Error(`--think-ms must be a number >= 0, got ${thinkMs}`);
  return thinkMs;
}
