/**
 * The composition root: builds the agent runtime (DeviceAgent by default), the engine client when engines are
 * configured, the device registry, the MQTT broker and the operator HTTP server from one validated config, and
 * hands them to the lifecycle (app/bridge/lifecycle.ts), which starts and stops them in the right order. Nothing
 * acknowledged is lost at any step of a stop: acks follow commits.
 */
import path from "node:path";
import type { Logger } from "pino";
import { type AgentRuntime, type Clock, createRuntime, systemClock } from "../agents/index.ts";
import { commandObserverWiring, DeviceAgent } from "../agents/device/index.ts";
import { type Broker, createBroker } from "../broker/index.ts";
import { createDeviceRegistry, type DeviceRegistry } from "../broker/registry/index.ts";
import { createEngineClient, type EngineClient } from "../engine-client/index.ts";
import {
  API_TOKEN_FILE,
  type ApiTokenSource,
  loadOrCreateApiToken,
  registerOperatorApi,
  removeGeneratedApiToken,
} from "./api/index.ts";
import { backupDirOf } from "./backup/backup-dir.ts";
import { BackupService } from "./backup/service.ts";
import { loadServedAgentClasses, registryClasses } from "./bridge/agent-classes.ts";
import { agentConfigError, checkAgentConfig } from "./bridge/agent-config.ts";
import { acquireDataDirLock, type DataDirLock } from "./bridge/data-dir-lock.ts";
import { OpenedParts } from "./bridge/opened-parts.ts";
import { engineClientInit } from "./bridge/engine-init.ts";
import { AGENTS_DIR, REGISTRY_FILE } from "./bridge/layout.ts";
import { type BridgeTap, tapHost } from "./bridge/tap.ts";
import { type BridgeAddresses, BridgeLifecycle, type LifecycleParts } from "./bridge/lifecycle.ts";
import { makeDataDir, warnIfOpenToOthers } from "./bridge/data-dir.ts";
import { proxyProtocolOf, readTlsFiles } from "./bridge/listeners.ts";
import { stopGraces } from "./bridge/stop-graces.ts";
import type { BridgeConfig } from "./config/index.ts";
import { registerDashboard } from "./dashboard/index.ts";
import { createHttpServer, engineReadinessCheck, type HttpServer } from "./http/index.ts";
import { type BridgeMetrics, createMetrics, registerMetricsRoute, trackHost } from "./metrics/index.ts";
import { createAgentSocketServer } from "./ws/index.ts";

export { AGENTS_DIR, REGISTRY_FILE } from "./bridge/layout.ts";

export type { BridgeAddresses } from "./bridge/lifecycle.ts";
export type { BridgeTap } from "./bridge/tap.ts";

export interface BridgeOptions {
  logger: Logger;
  /**
   * Time source for agents, the broker (its rate limits, grace periods, timeouts and the device registry), the
   * engine client, the metrics' activity (last seen, the live rates) and the operator API's `serverTime`. Default: the
   * system clock. aedes' own timers (connect timeout, keepalive) and prom-client's process metrics always run on the
   * wall clock.
   */
  clock?: Clock;
  /** Random source for agents and engine jitter. Default: Math.random. */
  random?: () => number;
  /** Observes device traffic (the demo prints reasoning answers with it). Default: none. */
  tap?: BridgeTap;
}

export interface Bridge {
  readonly config: BridgeConfig;
  readonly runtime: AgentRuntime;
  readonly broker: Broker;
  readonly registry: DeviceRegistry;
  /** Present when `engine.urls` is not empty. */
  readonly engine: EngineClient | undefined;
  readonly http: HttpServer;
  readonly metrics: BridgeMetrics;
  /** The operator API token (configured, or generated into the data directory). */
  readonly apiToken: string;
  /**
   * Where the token came from. `generated` only on the start that created `<dataDir>/api-token`: `agent-bridge start`
   * then prints it once on stdout (never to the log).
   */
  readonly apiTokenSource: ApiTokenSource;
  /** Starts every listener; resolves with their real addresses once the bridge is ready. */
  start(): Promise<BridgeAddresses>;
  /** Graceful stop; idempotent. */
  stop(): Promise<void>;
  addresses(): BridgeAddresses;
}

/**
 * Builds a bridge from a validated config (see `loadConfig`). Async because configured agent classes are
 * imported here, so a bad module fails before anything listens (BRIDGE_ERR_AGENT_CLASS), and so does a bad
 * per-class option under `agents.config` (BRIDGE_ERR_CONFIG, `details.issues` naming each; app/bridge/agent-config.ts).
 *
 * @example
 * const result = loadConfig({ env: process.env });
 * if (result.ok) {
 *   const bridge = await createBridge(result.config, { logger: createLogger() });
 *   console.log(await bridge.start());
 * }
 */
export async function createBridge(config: BridgeConfig, options: BridgeOptions): Promise<Bridge> {
  makeDataDir(config.dataDir);
  warnIfOpenToOthers(config.dataDir, options.logger);
  // One bridge per data directory, locked before anything in it is opened (app/bridge/data-dir-lock.ts).
  const lock = acquireDataDirLock(config.dataDir);
  const opened = new OpenedParts();
  try {
    return await buildBridge(config, options, lock, opened);
  } catch (err) {
    // What was opened before the failing step, in reverse order, then the lock: the data directory is free again.
    await opened.closeAll(options.logger);
    lock.release();
    throw err;
  }
}

async function buildBridge(
  config: BridgeConfig,
  options: BridgeOptions,
  lock: DataDirLock,
  opened: OpenedParts,
): Promise<Bridge> {
  const logger = options.logger;
  const served = await loadServedAgentClasses(DeviceAgent, config.agents.classes);
  const agentClasses = served.configured;
  // What the bridge computes itself (last seen, the live rates) moves with the agents' and the broker's clock; only
  // prom-client's process metrics (CPU, memory, event loop) read the process's own time.
  // Its process metrics sample on their own until closed: by the stop, or here if a later build step fails.
  const metrics = opened.add("metrics", createMetrics({ clock: options.clock }), (m) => m.close());
  // DeviceAgent classes report command state transitions to the metrics (bridge_command_states_total). Wired in
  // (env.wiring), apart from the options the config file sets (env.config). The classes devices are provisioned with
  // are among the configured ones (registryClasses).
  const agentWiring = commandObserverWiring([DeviceAgent, ...agentClasses.map((c) => c.agentClass)], (transition) =>
    metrics.commandState(transition.state),
  );
  // Per-class options are checked now, before anything opens or listens, not when each agent first wakes.
  const agentConfigIssues = checkAgentConfig(
    config.agents.config,
    DeviceAgent,
    agentClasses,
    config.agents.classes.map((c) => c.export),
  );
  if (agentConfigIssues.length > 0) throw agentConfigError(agentConfigIssues);
  const tls = readTlsFiles(config);
  // The stop's budget, shared out before the agents drain (app/bridge/stop-graces.ts).
  const graces = stopGraces(config.shutdown.timeoutMs);

  const registry = opened.add(
    "registry",
    // The registry's created_at, last-seen marks and verification cache expiry are the broker's time too. Spread only
    // when given: the registry merges its options over its defaults, so an explicit undefined would replace its clock.
    createDeviceRegistry({
      path: path.join(config.dataDir, REGISTRY_FILE),
      ...(options.clock ? { clock: options.clock } : {}),
    }),
    (r) => r.close(),
  );
  const perDevice = registryClasses(registry, served, logger);
  const engine =
    config.engine.urls.length === 0
      ? undefined
      : opened.add(
          "engine",
          createEngineClient({
            ...engineClientInit(config),
            observer: metrics.engineObserver,
            ...(options.clock ? { clock: options.clock } : {}),
            ...(options.random ? { random: options.random } : {}),
          }),
          (e) => e.close(),
        );
  const runtime = opened.add(
    "runtime",
    createRuntime({
      dataDir: path.join(config.dataDir, AGENTS_DIR),
      defaultAgentClass: DeviceAgent,
      // Devices provisioned with a class name come first (exact ids), then the configured patterns.
      agentClasses: [...perDevice.exact, ...agentClasses],
      clock: options.clock,
      random: options.random,
      engine,
      logger: logger.child({ component: "agents" }),
      agentConfig: config.agents.config,
      agentWiring,
      mailboxCapacity: config.agents.mailboxCapacity,
      idleTimeoutMs: config.agents.idleTimeoutMs,
      maxActiveAgents: config.agents.maxActiveAgents,
      maxDatabaseBytes: config.agents.maxDatabaseBytes,
      maxBatchEvents: config.agents.maxBatchEvents,
      synchronous: config.agents.synchronous,
      callbackTimeoutMs: config.agents.callbackTimeoutMs,
      dropMissingAgentRows: config.agents.dropMissingAgentRows,
      observer: metrics.runtimeObserver,
    }),
    (r) => r.shutdown(),
  );
  metrics.setSources({
    runtime,
    // Among the devices found at start: the API and `devices add` refuse a class the bridge does not serve, so none is
    // added later; one removed, or added again with a served class, leaves the count.
    agentClassFallbackDevices: () =>
      perDevice.fallbackIds.filter((id) => {
        const record = registry.get(id);
        return record !== undefined && served.fallback(record) !== null;
      }).length,
  });
  // Devices reach the runtime through the activity tracker, so the dashboard knows last-seen without waking agents.
  const activityHost = trackHost(runtime, metrics.activity);
  const trackedHost = options.tap === undefined ? activityHost : tapHost(activityHost, options.tap);
  const broker = opened.add(
    "broker",
    createBroker({
      host: trackedHost,
      registry,
      tcp: {
        host: config.mqtt.host,
        port: config.mqtt.port,
        proxyProtocol: proxyProtocolOf(config.mqtt.proxyProtocol),
      },
      tls:
        tls === undefined
          ? undefined
          : {
              host: config.mqtt.host,
              port: config.mqtt.tls.port,
              ...tls,
              proxyProtocol: proxyProtocolOf(config.mqtt.tls.proxyProtocol),
            },
      websocket: {
        path: "/mqtt",
        trustedProxies: config.mqtt.trustedProxies,
        // The broker closes before the agents drain: an MQTT WebSocket that never answers its close frame is cut after
        // a quarter of shutdown.timeoutMs (2 s at most), while the other close waits run (stop-graces.ts).
        closeGraceMs: graces.mqttWebSocket,
      },
      anonymous: config.mqtt.allowAnonymous,
      defaultCodec: config.mqtt.defaultCodec,
      limits: config.mqtt.limits,
      connectTimeoutMs: config.mqtt.connectTimeoutMs,
      subscribeGraceMs: config.mqtt.subscribeGraceMs,
      registryCheckMs: config.mqtt.registryCheckMs,
      // The agents' clock, so rate limits, grace periods and the broker's own timeouts move with it. aedes' own timers
      // (connectTimeoutMs, the devices' keepalive) stay on the wall clock (broker/options.ts, `clock`).
      clock: options.clock,
      observer: metrics.brokerObserver,
      logger: logger.child({ component: "broker" }),
    }),
    (b) => b.close(),
  );
  const token = loadOrCreateApiToken(config.dataDir, config.http.apiToken);
  if (token.source === "generated") {
    const tokenFile = path.join(config.dataDir, API_TOKEN_FILE);
    // The token itself never reaches a log line (logs get shipped and shared); the file is readable only by this user.
    logger.warn(
      { file: tokenFile },
      "generated the operator API token; it is printed once on stdout, kept in this file, or set BRIDGE_API_TOKEN",
    );
    // A build that fails from here has shown it to nobody: removed, the next start generates one and shows it.
    opened.add("api-token", token.token, (generated) => {
      removeGeneratedApiToken(config.dataDir, generated);
      logger.warn({ file: tokenFile }, "removed the generated operator API token: the bridge could not be built");
    });
  }

  const lifecycle = new BridgeLifecycle();

  const sockets = opened.add(
    "websockets",
    createAgentSocketServer({
      // Not through the activity tracker: an operator's client is not the device, and must not make it look seen.
      host: options.tap === undefined ? runtime : tapHost(runtime, options.tap),
      apiToken: token.token,
      // A token holder may open sockets only to provisioned devices (or any id in anonymous mode).
      agentExists: (id) => config.mqtt.allowAnonymous || registry.get(id) !== undefined,
      maxBufferedBytes: config.http.agentSockets.maxBufferedBytes,
      // The close handshake at a stop gets an eighth of shutdown.timeoutMs (1 s at most), while the MQTT WebSocket and
      // HTTP close waits run: together they leave at least three quarters of the stop budget for the agents to drain.
      closeGraceMs: graces.agentSockets,
      observer: metrics.socketObserver,
      logger: logger.child({ component: "ws" }),
    }),
    (s) => s.close(),
  );
  const http = opened.add(
    "http",
    createHttpServer({
      host: config.http.host,
      port: config.http.port,
      logger,
      readiness: lifecycle.readiness,
      // The engine is its own check: devices are served while it is down, so /readyz does not wait for it.
      readinessChecks: { engine: engineReadinessCheck(engine, { clock: options.clock }) },
      // Unlocks the engine check's replica URLs and error text; without it a probe gets the coarse answer.
      apiToken: token.token,
      // Requests in progress at a stop get a quarter of shutdown.timeoutMs (3 s at most): the agents drain after the
      // HTTP server has closed (a request may call into them), and must have time to before the stop is forced.
      closeGraceMs: graces.http,
      // Slow clients (a head or body that never ends, idle keep-alive) cannot hold the port's connections for long.
      headersTimeoutMs: config.http.headersTimeoutMs,
      requestTimeoutMs: config.http.requestTimeoutMs,
      keepAliveTimeoutMs: config.http.keepAliveTimeoutMs,
      maxConnections: config.http.maxConnections,
      upgradeRoutes: [
        {
          name: "mqtt",
          match: (p) => p === "/mqtt",
          handle: (req, socket, head) => broker.handleUpgrade(req, socket, head),
        },
        {
          name: "agents",
          match: (p) => sockets.matches(p),
          handle: (req, socket, head) => sockets.handleUpgrade(req, socket, head),
        },
      ],
    }),
    (h) => h.close(),
  );
  const clock = options.clock ?? systemClock;
  const backup = new BackupService(
    {
      dataDir: config.dataDir,
      registry,
      runtime,
      logger: logger.child({ component: "backup" }),
      now: () => clock.now(),
      monotonicNow: () => clock.monotonicNow(),
    },
    backupDirOf(config),
    metrics.backupObserver,
  );
  await registerOperatorApi(http.app, {
    runtime,
    backup,
    registry,
    broker,
    engine,
    engineHealthCheckTimeoutMs: config.engine.healthCheckTimeoutMs,
    activity: metrics.activity,
    agentClassNames: [...served.byName.keys()],
    agentClassFallback: served.fallback,
    apiToken: token.token,
    // The time the fleet view's ages (last seen, from the activity above) and telemetry's default range are read
    // against: the same clock, or a test's manual clock would show devices seen at another date than serverTime.
    clock: options.clock,
  });
  await registerMetricsRoute(http.app, metrics, { token: token.token });
  await registerDashboard(http.app);

  const parts: LifecycleParts = { runtime, broker, sockets, http, engine, registry, metrics, lock, logger };
  return {
    config,
    runtime,
    broker,
    registry,
    engine,
    http,
    metrics,
    apiToken: token.token,
    apiTokenSource: token.source,
    start: () => lifecycle.start(parts),
    stop: () => lifecycle.stop(parts),
    addresses: () => lifecycle.addresses(),
  };
}
