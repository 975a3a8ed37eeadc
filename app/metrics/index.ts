/**
 * Prometheus metrics (prom-client) and the live activity the dashboard reads. See docs/api.md, "Metrics".
 */
export { ActivityTracker, approxSize, MAX_KEPT_READINGS_CHARS, trackHost } from "./activity.ts";
export {
  type BridgeMetrics,
  createMetrics,
  type MetricsOptions,
  type MetricsSources,
  type SocketObserver,
} from "./metrics.ts";
export { EVENT_LOOP_SAMPLE_MS } from "./process-metrics.ts";
export { type MetricsRouteOptions, registerMetricsRoute } from "./route.ts";
export { type NowSource, SlidingWindow, type WindowPoint } from "./sliding-window.ts";
