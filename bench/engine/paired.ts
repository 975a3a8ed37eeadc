/**
 * Paired latency at one device: direct and bridge requests alternate one by one, and what the bridge adds is taken
 * per pair (bridge minus the direct request next to it), then summarized. The round-based figures compare medians of
 * runs a few seconds apart, and on a shared virtual machine the latency of everything drifts by more than the bridge
 * adds within that time; two requests a third of a second apart see the same machine. The order inside a pair
 * alternates too, so neither mode always runs right after the other.
 */
import { percentile } from "./args.ts";
import type { BenchMode, BenchPrompt } from "./modes.ts";

export interface PairedLatency {
  pairs: number;
  /** Bridge minus direct, per pair, ms: time to the first text. */
  addedFirst: { p10: number; p50: number; p90: number };
  /** Bridge minus direct, per pair, ms: time to the end of the answer. */
  addedDone: { p10: number; p50: number; p90: number };
}

function spread(values: number[]): { p10: number; p50: number; p90: number } {
  return { p10: percentile(values, 10), p50: percentile(values, 50), p90: percentile(values, 90) };
}

/** Runs `pairs` pairs of one `direct` and one `bridge` request, each asking `prompt(i)`. */
export async function pairedLatency(
  direct: BenchMode,
  bridge: BenchMode,
  pairs: number,
  prompt: (i: number) => BenchPrompt,
): Promise<PairedLatency> {
  const addedFirst: number[] = [];
  const addedDone: number[] = [];
  for (let i = 0; i < pairs; i++) {
    const order = i % 2 === 0 ? [direct, bridge] : [bridge, direct];
    const [a, b] = [await order[0].call(prompt(i)), await order[1].call(prompt(i))];
    const [d, v] = order[0] === direct ? [a, b] : [b, a];
    addedFirst.push(v.ttftMs - d.ttftMs);
    addedDone.push(v.latencyMs - d.latencyMs);
  }
  return { pairs, addedFirst: spread(addedFirst), addedDone: spread(addedDone) };
}
