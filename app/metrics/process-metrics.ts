/**
 * prom-client's default process metrics (CPU, memory, handles, event loop, GC), with a way to stop them.
 * `collectDefaultMetrics` starts two monitors that run as long as the process does and hands back neither: the
 * event-loop delay histogram (`monitorEventLoopDelay`, a timer every EVENT_LOOP_SAMPLE_MS) and a PerformanceObserver
 * of GC. A process that built and closed many bridges (the test suites, an embedding application) kept every bridge's
 * pair running. They are caught here as prom-client creates them, so `stop()` can end them.
 */
import perfHooks, { type IntervalHistogram, type PerformanceObserver } from "node:perf_hooks";
import { collectDefaultMetrics, type Registry } from "prom-client";
import { delayBeyondInterval } from "./event-loop-delay.ts";

/** How often the event-loop delay monitor samples, ms (prom-client's default: 10). */
export const EVENT_LOOP_SAMPLE_MS = 100;

/** The process metrics' monitors. */
export interface ProcessMetrics {
  /**
   * Stops the event-loop delay monitor and disconnects the GC observer; idempotent. The series stay registered:
   * a scrape still answers, with the values sampled until then.
   */
  stop(): void;
}

/**
 * Registers prom-client's default metrics in `registry` and returns what stops their monitors.
 *
 * @example
 * const processMetrics = collectProcessMetrics(registry);
 * // ... when the bridge closes:
 * processMetrics.stop();
 */
export function collectProcessMetrics(registry: Registry): ProcessMetrics {
  const monitors: IntervalHistogram[] = [];
  const observers: PerformanceObserver[] = [];
  // prom-client looks both up on node:perf_hooks when it is called (15.x), so for this synchronous call they are
  // wrapped to keep what they create. Nothing else runs meanwhile; the originals are back before it returns.
  const monitorEventLoopDelay = perfHooks.monitorEventLoopDelay;
  const Observer = perfHooks.PerformanceObserver;
  perfHooks.monitorEventLoopDelay = (options) => {
    const monitor = monitorEventLoopDelay(options);
    monitors.push(monitor);
    // What prom-client reads: the delay beyond the sampling interval, not the interval itself (event-loop-delay.ts).
    return delayBeyondInterval(monitor, options?.resolution ?? EVENT_LOOP_SAMPLE_MS);
  };
  perfHooks.PerformanceObserver = class extends Observer {
    constructor(callback: ConstructorParameters<typeof Observer>[0]) {
      super(callback);
      observers.push(this);
    }
  };
  try {
    // The event-loop delay histogram (nodejs_eventloop_lag_*) samples on a timer: prom-client's default of every 10 ms
    // woke an idle bridge 100 times a second, most of its idle CPU. A stall still shows whenever it spans a sample.
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  } finally {
    perfHooks.monitorEventLoopDelay = monitorEventLoopDelay;
    perfHooks.PerformanceObserver = Observer;
  }
  return {
    stop() {
      for (const monitor of monitors) monitor.disable();
      for (const observer of observers) observer.disconnect();
    },
  };
}
