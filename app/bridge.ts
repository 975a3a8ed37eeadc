/**
 * The composition root: builds the agent runtime (DeviceAgent by default), the engine client when engines are
 * configured, the device registry, the MQTT broker and the operator HTTP server from one validated config, and
 * starts and stops them in the right order.
 *
 * Start: runtime (resumes alarms, queues, outboxes) -> broker listeners -> HTTP; ready only when all are up.
 * Stop: refuse new upgrades -> close device sessions (broker), agent sockets and HTTP, together -> drain and commit
 * every agent -> close the engine client and the registry. Nothing acknowledged is lost at any step: acks follow commits.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { Logger } from "pino";
import { type AgentRuntime, type Clock, createRuntime } from "../agents/index.ts";
import { commandObserverWiring, DeviceAgent } from "../agents/device/index.ts";
import { type Broker, createBroker } from "../broker/index.ts";
import { createDeviceRegistry, type DeviceRegistry } from "../broker/registry/index.ts";
import { createEngineClient, type EngineClient } from "../engine-client/index.ts";
import { BridgeError, hasErrorCode } from "../errors/index.ts";
import { API_TOKEN_FILE, type ApiTokenSource, loadOrCreateApiToken, registerOperatorApi } from "./api/index.ts";
import { loadServedAgentClasses, registryClasses } from "./bridge/agent-classes.ts";
import { agentConfigError, checkAgentConfig } from "./bridge/agent-config.ts";
import { acquireDataDirLock, type DataDirLock } from "./bridge/data-dir-lock.ts";
import { OpenedParts } from "./bridge/opened-parts.ts";
import { engineClientInit } from "./bridge/engine-init.ts";
import { logEngineHealthAtStart } from "./bridge/engine-health-at-start.ts";
import { AGENTS_DIR, REGISTRY_FILE } from "./bridge/layout.ts";
import { type BridgeTap, tapHost } from "./bridge/tap.ts";
import { type Address, proxyProtocolOf, readTlsFiles } from "./bridge/listeners.ts";
import { stopGraces } from "./bridge/stop-graces.ts";
import { runStopStages } from "./bridge/stop-stages.ts";
import type { BridgeConfig } from "./config/index.ts";
import { registerDashboard } from "./dashboard/index.ts";
import { createHttpServer, engineReadinessCheck, type HttpServer, type Readiness } from "./http/index.ts";
import { type BridgeMetrics, createMetrics, registerMetricsRoute, trackHost } from "./metrics/index.ts";
import { createAgentSocketServer } from "./ws/index.ts";

export { AGENTS_DIR, REGISTRY_FILE } from "./bridge/layout.ts";

export type { BridgeTap } from "./bridge/tap.ts";

export interface BridgeOptions {
  logger: Logger;
  /**
   * Time source for agents, the broker (its rate limits, grace periods, timeouts and the device registry) and the
   * engine client. Default: the system clock. aedes' own timers (connect timeout, keepalive) always run on the wall
   * clock.
   */
  clock?: Clock;
  /** Random source for agents and engine jitter. Default: Math.random. */
  random?: () => number;
  /** Observes device traffic (the demo prints reasoning answers with it). Default: none. */
  tap?: BridgeTap;
}

/** Real addresses of every listener (port 0 resolved). Absent: that listener is off or not started yet. */
export interface BridgeAddresses {
  mqtt?: Address;
  mqtts?: Address;
  http?: Address;
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
  mkdirSync(config.dataDir, { recursive: true });
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
  const metrics = createMetrics();
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
    // The token itself never reaches a log line (logs get shipped and shared); the file is readable only by this user.
    logger.warn(
      { file: path.join(config.dataDir, API_TOKEN_FILE) },
      "generated the operator API token; it is printed once on stdout, kept in this file, or set BRIDGE_API_TOKEN",
    );
  }

  let phase: "created" | "starting" | "ready" | "stopping" | "stopped" = "created";
  const current: BridgeAddresses = {};
  const readiness = (): Readiness => ({
    ready: phase === "ready",
    phase,
    listeners: { mqtt: current.mqtt, mqtts: current.mqtts, http: current.http },
  });

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
      readiness,
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
  await registerOperatorApi(http.app, {
    runtime,
    registry,
    broker,
    engine,
    engineHealthCheckTimeoutMs: config.engine.healthCheckTimeoutMs,
    activity: metrics.activity,
    agentClassNames: [...served.byName.keys()],
    agentClassFallback: served.fallback,
    apiToken: token.token,
  });
  await registerMetricsRoute(http.app, metrics, { token: token.token });
  await registerDashboard(http.app);

  let stopping: Promise<void> | undefined;
  /**
   * Settles once a start's HTTP listen is over (bound or failed). A stop closes the HTTP server only after it: closed
   * while the listen was binding, the server would bind after its close and keep the port. Set before the listen
   * begins, so a stop that begins the moment it does waits for it too.
   */
  let httpListenOver: Promise<void> = Promise.resolve();

  async function stopAll(): Promise<void> {
    phase = "stopping";
    // Upgrades to /mqtt and /agents are refused from here. The HTTP server stops listening in the first stage, with the
    // broker's listeners: no probe needs a 503 from /readyz first, since the devices' MQTT ports close at once too.
    http.stopAccepting();
    await runStopStages(
      [
        // Independent sockets: their close waits overlap, each cut at its grace, so all end by graces.closesMs and the
        // agents keep the rest of shutdown.timeoutMs (stop-graces.ts). One after the other they took the sum.
        [
          { name: "broker", run: () => broker.close() },
          { name: "websockets", run: () => sockets.close() },
          {
            name: "http",
            run: async () => {
              await httpListenOver;
              await http.close();
            },
          },
        ],
        // Only once nothing delivers events to the agents or calls into them: the runtime refuses new events while it
        // drains, and a device's close (its agent's onClose) or an operator's call would be refused instead of run.
        [{ name: "runtime", run: () => runtime.shutdown() }],
        // An agent draining may still ask the engine; the registry and the lock go last.
        ...(engine ? [[{ name: "engine", run: () => engine.close() }]] : []),
        [{ name: "registry", run: () => registry.close() }],
        [{ name: "data-dir lock", run: () => lock.release() }],
      ],
      (step, err) => logger.error({ err, step }, "error while stopping"),
    );
    phase = "stopped";
  }

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
    async start() {
      if (phase !== "created") throw new BridgeError("BRIDGE_ERR_STOPPED", `the bridge cannot start when ${phase}`);
      phase = "starting";
      // A stop requested while starting wins: no listener opens after it began.
      const stillStarting = () => {
        if (phase !== "starting") throw new BridgeError("BRIDGE_ERR_STOPPED", "the bridge was stopped while starting");
      };
      try {
        await runtime.start();
        stillStarting();
        const listening = await broker.start();
        if (listening.tcp) current.mqtt = listening.tcp;
        if (listening.tls) current.mqtts = listening.tls;
        stillStarting();
        let listenOver = (): void => {};
        httpListenOver = new Promise((resolve) => {
          listenOver = resolve;
        });
        try {
          current.http = await http.listen();
        } finally {
          listenOver();
        }
        stillStarting();
      } catch (err) {
        // The stop closed the part this start was opening, which then fails with its own code (the broker's
        // BRIDGE_ERR_BROKER_CLOSED): the stop is what happened, and `agent-bridge start` exits 0 for it, not 1.
        if (phase === "starting" || hasErrorCode(err, "BRIDGE_ERR_STOPPED")) throw err;
        throw new BridgeError("BRIDGE_ERR_STOPPED", "the bridge was stopped while starting", {}, { cause: err });
      }
      phase = "ready";
      // Reported, not awaited: a slow engine must not delay devices (app/bridge/engine-health-at-start.ts).
      if (engine) logEngineHealthAtStart(engine, logger, () => phase === "ready");
      return { ...current };
    },
    stop() {
      stopping ??= stopAll();
      return stopping;
    },
    addresses() {
      return { ...current };
    },
  };
}
