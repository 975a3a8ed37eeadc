/**
 * How busy this process is, for the chunk batcher's load-adaptive window: the event loop's utilization (the share
 * of time it was running callbacks rather than waiting for I/O, node's `performance.eventLoopUtilization()`) over
 * the last sample period. One gauge serves every agent of the process; it samples lazily, when asked, at most once
 * per period, so an idle process pays nothing.
 */
import { performance } from "node:perf_hooks";

/** A source of the process's recent load. */
export interface LoadGauge {
  /** Event-loop utilization over the last sample period, 0 (idle) to 1 (never waited for I/O). */
  utilization(): number;
}

/** Reads the event loop's utilization, sampled at most every `samplePeriodMs` (default 100). */
export function eventLoopGauge(samplePeriodMs = 100): LoadGauge {
  let previous = performance.eventLoopUtilization();
  let previousAt = performance.now();
  let value = 0;
  return {
    utilization() {
      const now = performance.now();
      if (now - previousAt >= samplePeriodMs) {
        const current = performance.eventLoopUtilization();
        value = performance.eventLoopUtilization(current, previous).utilization;
        previous = current;
        previousAt = now;
      }
      return value;
    },
  };
}

/** The process's gauge, shared by every batcher that is not given another. */
export const processLoadGauge: LoadGauge = eventLoopGauge();

/** A gauge that always reads idle: the batcher then always uses its normal window. */
export const idleGauge: LoadGauge = { utilization: () => 0 };
