/**
 * Node 20's event-loop delay histogram (`monitorEventLoopDelay`) records each whole interval between its timer's
 * runs, the sampling interval included: an idle process reads the interval itself (measured at a 100 ms interval:
 * min 99.4, p50 100.5 ms). prom-client sets its `nodejs_eventloop_lag_*` gauges from the histogram as read, so an
 * idle bridge reported 0.1 s of event-loop lag, and an alert on it fired for nothing. This view of the histogram
 * reports what a stall costs: the delay beyond the interval (0 at least). The spread (`stddev`) is unchanged by the
 * shift; enabling, disabling and resetting act on the histogram itself.
 */
import type { IntervalHistogram } from "node:perf_hooks";

/** `histogram`, sampling every `intervalMs`, read as its delays beyond that interval (ns, as the histogram). */
export function delayBeyondInterval(histogram: IntervalHistogram, intervalMs: number): IntervalHistogram {
  const intervalNs = intervalMs * 1e6;
  const beyond = (ns: number): number => Math.max(0, ns - intervalNs);
  return new Proxy(histogram, {
    get(target, key) {
      switch (key) {
        case "min":
          return beyond(target.min);
        case "max":
          return beyond(target.max);
        case "mean":
          return beyond(target.mean);
        case "percentile":
          return (percentile: number) => beyond(target.percentile(percentile));
      }
      const value: unknown = Reflect.get(target, key, target);
      // The histogram's methods check their receiver: called on the proxy they would throw.
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
