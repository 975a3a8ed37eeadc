/**
 * Paired latency at one device: direct and bridge requests take turns one by one, and what the bridge adds is taken
 * per pair (bridge minus the direct request next to it), then summarized. The round-based figures compare medians of
 * runs a few seconds apart, and on a shared virtual machine the latency of everything drifts by more than the bridge
 * adds within that time; two requests a third of a second apart see the same machine. The order inside a pair
 * rotates too, so no mode always runs right after another. With a second bridge (`--compare-bin`), each group is
 * one direct request and one request through each bridge, so two builds are compared against the same direct calls.
 */
import { percentile } from "../percentile.ts";
import { rotated } from "../round-order.ts";
import { type MedianWithInterval, medianWithInterval } from "./median-ci.ts";
import type { BenchMode, BenchPrompt } from "./modes.ts";

/** Percentiles of per-pair differences, ms, with the median's 95% bootstrap interval (median-ci.ts). */
export interface PairedSpread {
  p10: number;
  p50: number;
  p90: number;
  ci95: [number, number];
}

export interface PairedLatency {
  /** The bridge mode measured ("bridge", or "compare" for the second build). */
  mode: string;
  pairs: number;
  /** Bridge minus direct, per pair, ms: time to the first text. */
  addedFirst: PairedSpread;
  /** Bridge minus direct, per pair, ms: time to the end of the answer. */
  addedDone: PairedSpread;
  /**
   * For every bridge after the first: this one's time to the first text minus the first bridge's, per group (both
   * against the same direct request), ms. How two builds compare, with how sure that is.
   */
  firstVersusFirstBridge?: MedianWithInterval;
}

function spread(values: number[]): PairedSpread {
  const { p50, ci95 } = medianWithInterval(values);
  return { p10: percentile(values, 10), p50, p90: percentile(values, 90), ci95 };
}

/** Runs `pairs` groups of one `direct` request and one request through each of `bridges`, each asking `prompt(i)`. */
export async function pairedLatency(
  direct: BenchMode,
  bridges: readonly BenchMode[],
  pairs: number,
  prompt: (i: number) => BenchPrompt,
): Promise<PairedLatency[]> {
  const modes: readonly BenchMode[] = [direct, ...bridges];
  const added = bridges.map(() => ({ first: [] as number[], done: [] as number[] }));
  for (let i = 0; i < pairs; i++) {
    // Rotated, so each mode takes each place in turn; with two bridges their order flips every full rotation too,
    // so neither always runs right after the other.
    const cycle = Math.floor(i / modes.length) % 2 === 0 ? modes : [direct, ...[...bridges].reverse()];
    const outcomes = new Map<BenchMode, { ttftMs: number; latencyMs: number }>();
    for (const mode of rotated(cycle, i)) outcomes.set(mode, await mode.call(prompt(i)));
    const d = outcomes.get(direct)!;
    bridges.forEach((bridge, k) => {
      const v = outcomes.get(bridge)!;
      added[k].first.push(v.ttftMs - d.ttftMs);
      added[k].done.push(v.latencyMs - d.latencyMs);
    });
  }
  return bridges.map((bridge, k) => ({
    mode: bridge.name,
    pairs,
    addedFirst: spread(added[k].first),
    addedDone: spread(added[k].done),
    ...(k === 0
      ? {}
      : { firstVersusFirstBridge: medianWithInterval(added[k].first.map((v, i) => v - added[0].first[i])) }),
  }));
}
