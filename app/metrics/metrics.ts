/**
 * Prometheus metrics for the whole bridge: one prom-client Registry and the observer objects the runtime, broker and
 * engine client call; the runtime's series (its hooks' and the gauges read from it at scrape time) are in
 * runtime-metrics.ts. Series names are listed in docs/api.md.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { RuntimeObserver } from "../../agents/types.ts";
import type { BrokerObserver } from "../../broker/observer.ts";
import type { EngineObserver } from "../../engine-client/observer.ts";
import type { BackupObserver } from "../backup/service.ts";
import { ActivityTracker } from "./activity.ts";
import { backupMetrics } from "./backup-metrics.ts";
import { BatchedCounter } from "./batched-counter.ts";
import { finishReasonLabel } from "./finish-reason.ts";
import { collectProcessMetrics } from "./process-metrics.ts";
import { type RuntimeStats, runtimeMetrics } from "./runtime-metrics.ts";
import { systemClock } from "../../agents/clock.ts";
import type { NowSource } from "./sliding-window.ts";

/** Options of `createMetrics`. */
export interface MetricsOptions {
  /**
   * Clock of the live rates and last-seen marks: the window counts seconds on its `monotonicNow()`, the marks and the
   * points' dates read `now()`. Default the system clock.
   */
  clock?: NowSource;
  /**
   * Collect prom-client's default process metrics (CPU, memory, event loop, GC). Default true. Their event-loop
   * delay monitor and GC observer run until `close()`.
   */
  defaultMetrics?: boolean;
  /** Seconds of per-second history kept for the dashboard. Default 60. */
  activityWindowSeconds?: number;
}

/** Scrape-time sources: read when Prometheus scrapes, so nothing polls in between. */
export interface MetricsSources {
  runtime?: { stats(): RuntimeStats };
  /** How many registered devices ask for an agent class the bridge does not serve (app/bridge/agent-class-fallback.ts). */
  agentClassFallbackDevices?: () => number;
}

/** Hooks for the WebSocket agent endpoint (app/ws). */
export interface SocketObserver {
  opened(): void;
  closed(): void;
  messageIn(channel: string): void;
  messageOut(channel: string): void;
  protocolError(code: string): void;
  /** A socket was closed for a limit (BRIDGE_ERR_WS_SLOW_CONSUMER: its client stopped reading). */
  limitBreach(code: string): void;
}

export interface BridgeMetrics {
  readonly registry: Registry;
  readonly runtimeObserver: RuntimeObserver;
  readonly brokerObserver: BrokerObserver;
  readonly engineObserver: EngineObserver;
  readonly socketObserver: SocketObserver;
  /** Hooks of the bridge's backups (app/backup/service.ts). */
  readonly backupObserver: BackupObserver;
  /** Live rates and last-seen facts for the REST API (`OperatorDeps.activity`). */
  readonly activity: ActivityTracker;
  /** Counts a command state transition (QUEUED, SENT, SUCCEEDED, FAILED, EXPIRED). */
  commandState(state: string): void;
  /** Sets where scrape-time gauges read from (call once the runtime exists). */
  setSources(sources: MetricsSources): void;
  /** The text exposition. */
  scrape(): Promise<string>;
  readonly contentType: string;
  /**
   * Stops what samples on its own: the default metrics' event-loop delay monitor and GC observer (process-metrics.ts).
   * The bridge calls it when it stops. Idempotent; scrapes still answer.
   */
  close(): void;
}

const ENGINE_BUCKETS_S = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60];

/**
 * Creates the metrics registry and observers.
 *
 * @example
 * const metrics = createMetrics();
 * const runtime = createRuntime({ ..., observer: metrics.runtimeObserver });
 * metrics.setSources({ runtime });
 * registerMetricsRoute(app, metrics, { token });
 */
export function createMetrics(options: MetricsOptions = {}): BridgeMetrics {
  const registry = new Registry();
  const processMetrics = (options.defaultMetrics ?? true) ? collectProcessMetrics(registry) : undefined;
  const activity = new ActivityTracker(options.clock ?? systemClock, options.activityWindowSeconds ?? 60);
  let sources: MetricsSources = {};
  const reg = [registry];

  const connections = new Gauge({
    name: "bridge_connections",
    help: "Open connections by transport (tcp, tls, ws: MQTT; agent-ws: WebSocket agent clients)",
    labelNames: ["transport"],
    registers: reg,
  });
  const connectionsClosed = new Counter({
    name: "bridge_connections_closed_total",
    help: "MQTT sessions ended, by transport and close reason (disconnect, will, takeover, error, shutdown, removed, revoked, destroyed)",
    labelNames: ["transport", "reason"],
    registers: reg,
  });
  // The per-message counters add plain numbers and reach prom-client at scrape time (batched-counter.ts).
  const messagesIn = new BatchedCounter({
    name: "bridge_messages_in_total",
    help: "Messages received from devices and WebSocket clients, by channel and codec",
    labelNames: ["channel", "codec"],
    registers: reg,
  });
  const messagesOut = new BatchedCounter({
    name: "bridge_messages_out_total",
    help: "Messages sent to devices and WebSocket clients, by channel and codec",
    labelNames: ["channel", "codec"],
    registers: reg,
  });
  const decodeErrors = new Counter({
    name: "bridge_decode_errors_total",
    help: "Inbound payloads that failed to decode, by error code",
    labelNames: ["code"],
    registers: reg,
  });
  const limitBreaches = new Counter({
    name: "bridge_limit_breaches_total",
    help: "Limits breached (rate, frame size, ...), by error code",
    labelNames: ["code"],
    registers: reg,
  });
  const authFailures = new Counter({
    name: "bridge_auth_failures_total",
    help: "Refused device CONNECTs, by reason",
    labelNames: ["reason"],
    registers: reg,
  });
  const aclDenied = new Counter({
    name: "bridge_acl_denied_total",
    help: "Publishes or subscriptions outside the device namespace, by action",
    labelNames: ["action"],
    registers: reg,
  });
  const runtimeObserver = runtimeMetrics(registry, () => sources.runtime?.stats());
  const commandStates = new Counter({
    name: "bridge_command_states_total",
    help: "Command state transitions, by new state",
    labelNames: ["state"],
    registers: reg,
  });
  new Gauge({
    name: "bridge_devices_agent_class_fallback",
    help: "Registered devices asking for an agent class the bridge does not serve, served by a fallback class instead",
    registers: reg,
    collect() {
      const count = sources.agentClassFallbackDevices?.();
      if (count !== undefined) this.set(count);
    },
  });
  const engineQueueWait = new Histogram({
    name: "bridge_engine_queue_wait_seconds",
    help: "Time a reasoning request waited in the engine client's fair queue",
    buckets: ENGINE_BUCKETS_S,
    registers: reg,
  });
  const engineTtft = new Histogram({
    name: "bridge_engine_time_to_first_token_seconds",
    help: "Time from request accepted to first streamed token",
    buckets: ENGINE_BUCKETS_S,
    registers: reg,
  });
  const engineTokens = new Counter({
    name: "bridge_engine_tokens_total",
    help: "Engine tokens, by type (prompt, completion, cached)",
    labelNames: ["type"],
    registers: reg,
  });
  const engineRequests = new Counter({
    name: "bridge_engine_requests_total",
    help: "Finished engine requests, by finish reason (stop, length, tool_calls, ...; other for an unknown one)",
    labelNames: ["finish_reason"],
    registers: reg,
  });
  const engineErrors = new Counter({
    name: "bridge_engine_errors_total",
    help: "Engine requests that failed for good, by error code",
    labelNames: ["code"],
    registers: reg,
  });
  const engineRetries = new Counter({
    name: "bridge_engine_retries_total",
    help: "Engine attempts retried, by error code",
    labelNames: ["code"],
    registers: reg,
  });
  const engineInFlight = new Gauge({
    name: "bridge_engine_in_flight",
    help: "Engine requests in flight, by replica",
    labelNames: ["replica"],
    registers: reg,
  });
  const engineQueueDepth = new Gauge({
    name: "bridge_engine_queue_depth",
    help: "Requests waiting in the engine client's fair queue",
    registers: reg,
  });
  const engineReplicaUp = new Gauge({
    name: "bridge_engine_replica_healthy",
    help: "1 when the replica is healthy, 0 while cooling down",
    labelNames: ["replica"],
    registers: reg,
  });

  const brokerObserver: BrokerObserver = {
    connectionOpened(transport) {
      connections.inc({ transport });
    },
    connectionClosed(transport, reason) {
      connections.dec({ transport });
      connectionsClosed.inc({ transport, reason });
    },
    messageIn(channel, codec) {
      messagesIn.inc(channel, codec);
      activity.messageIn();
    },
    messageOut(channel, codec) {
      messagesOut.inc(channel, codec);
      activity.messageOut();
    },
    decodeError(code) {
      decodeErrors.inc({ code });
    },
    limitBreach(code) {
      limitBreaches.inc({ code });
    },
    authFailure(reason) {
      authFailures.inc({ reason });
    },
    aclDenied(action) {
      aclDenied.inc({ action });
    },
  };

  const engineObserver: EngineObserver = {
    // Both are read on the engine client's monotonic clock, so never negative with the real one; the clamp keeps an
    // injected clock's odd reading from taking the histogram's _sum down (a counter reset to Prometheus).
    onDispatch(e) {
      const waitMs = Math.max(0, e.queueWaitMs);
      engineQueueWait.observe(waitMs / 1000);
      activity.engineDispatch(waitMs);
    },
    onFirstToken(e) {
      const ttftMs = Math.max(0, e.ttftMs);
      engineTtft.observe(ttftMs / 1000);
      activity.engineFirstToken(ttftMs);
    },
    onComplete(e) {
      engineRequests.inc({ finish_reason: finishReasonLabel(e.finishReason) });
      engineTokens.inc({ type: "prompt" }, e.usage.promptTokens);
      engineTokens.inc({ type: "completion" }, e.usage.completionTokens);
      engineTokens.inc({ type: "cached" }, e.usage.cachedTokens);
      activity.engineComplete(e.usage.completionTokens);
    },
    onError(e) {
      engineErrors.inc({ code: e.code });
      activity.engineError();
    },
    onRetry(e) {
      engineRetries.inc({ code: e.code });
    },
    onInFlight(e) {
      engineInFlight.set({ replica: e.replica }, e.inFlight);
    },
    onQueueDepth(e) {
      engineQueueDepth.set(e.depth);
    },
    onReplicaState(e) {
      engineReplicaUp.set({ replica: e.replica }, e.state === "healthy" ? 1 : 0);
    },
  };

  const socketObserver: SocketObserver = {
    opened() {
      connections.inc({ transport: "agent-ws" });
    },
    closed() {
      connections.dec({ transport: "agent-ws" });
    },
    messageIn(channel) {
      messagesIn.inc(channel, "json");
      activity.messageIn();
    },
    messageOut(channel) {
      messagesOut.inc(channel, "json");
      activity.messageOut();
    },
    protocolError(code) {
      decodeErrors.inc({ code });
    },
    limitBreach(code) {
      limitBreaches.inc({ code });
    },
  };

  return {
    registry,
    runtimeObserver,
    brokerObserver,
    engineObserver,
    socketObserver,
    backupObserver: backupMetrics(registry),
    activity,
    commandState(state) {
      commandStates.inc({ state });
    },
    setSources(next) {
      sources = { ...sources, ...next };
    },
    scrape: () => registry.metrics(),
    contentType: registry.contentType,
    close() {
      processMetrics?.stop();
    },
  };
}
