/**
 * `agent-bridge start`: load the configuration, start the bridge, log the real addresses, and stop gracefully on
 * SIGTERM/SIGINT (stop accepting, drain mailboxes, commit, close, exit 0). A second signal forces exit 1 (the same one
 * again within a second is the first delivered twice: stop-signals.ts).
 */
import { join } from "node:path";
import type { Command } from "commander";
import type { Logger } from "pino";
import { API_TOKEN_FILE } from "../api/token.ts";
import type { Bridge } from "../bridge.ts";
import { type BridgeConfig, isLoopbackHost } from "../config/index.ts";
import { createLogger } from "../logging.ts";
import { dashboardLink } from "../dashboard/index.ts";
import { hasErrorCode } from "../../errors/index.ts";
import { exitOnBridgeBuildError, loadConfigWithSourcesOrExit } from "./config-flags.ts";
import { CliExit, EXIT_FAILURE } from "./exit.ts";
import { onStopSignals, type StopSignal } from "./stop-signals.ts";
import { listenerUrl } from "../listener-url.ts";
import { memoryReducerOff } from "../node-flags.ts";

type Flags = Record<string, unknown>;

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** The defaults a command's help names for the flags it resolves on its own terms (the demo has its own). */
export interface BridgeFlagDefaults {
  dataDir: string;
  host: string;
  mqttPort: string;
  httpPort: string;
  logLevel: string;
}

const START_FLAG_DEFAULTS: BridgeFlagDefaults = {
  dataDir: "default ./data",
  host: "0.0.0.0",
  mqttPort: "1883",
  httpPort: "8080",
  logLevel: "info",
};

/** The flags every command that starts a bridge accepts (`start`, `demo`). */
export function addBridgeFlags(cmd: Command, defaults: BridgeFlagDefaults = START_FLAG_DEFAULTS): Command {
  return cmd
    .option("-c, --config <file>", "JSON config file (or BRIDGE_CONFIG)")
    .option("--data-dir <dir>", `data directory (${defaults.dataDir})`)
    .option("--backup-dir <dir>", "folder POST /api/backup writes snapshots into (default <data-dir>/backups)")
    .option("--host <address>", `MQTT bind address (default ${defaults.host})`)
    .option("--mqtt-port <port>", `MQTT TCP port, 0 picks a free one (default ${defaults.mqttPort})`)
    .option(
      "--mqtt-proxy-protocol <ranges>",
      "load balancer addresses/CIDR ranges (comma-separated): MQTT TCP connections must start with their PROXY header",
    )
    .option("--http-host <address>", "operator HTTP bind address (default 127.0.0.1)")
    .option("--http-port <port>", `operator HTTP port, 0 picks a free one (default ${defaults.httpPort})`)
    .option("--allow-anonymous", "accept devices without credentials (development only)")
    .option("--default-codec <codec>", "codec for devices that never said: json, cbor, pb (default cbor)")
    .option("--engine-url <url>", "OpenAI-compatible engine base URL (repeatable)", collect)
    .option("--engine-model <name>", "engine model name (default: the engine's first)")
    .option("--idle-timeout-ms <ms>", "hibernate an agent idle this long (default 60000)")
    .option(
      "--drop-missing-agent-rows",
      "drop the alarms of agents whose database is missing even if most are (refused otherwise: agents folder not mounted?)",
    )
    .option("--log-level <level>", `fatal, error, warn, info, debug, trace, silent (default ${defaults.logLevel})`)
    .option("--tls-cert <file>", "PEM certificate: enables MQTT over TLS")
    .option("--tls-key <file>", "PEM private key for --tls-cert")
    .option("--tls-ca <file>", "PEM CA bundle for client certificates")
    .option("--tls-port <port>", "MQTT over TLS port (default 8883)")
    .option(
      "--tls-proxy-protocol <ranges>",
      "load balancer addresses/CIDR ranges (comma-separated): MQTT TLS connections must start with their PROXY header",
    );
}

/** Logs loud warnings for settings that weaken security, so they never go unnoticed. */
function warnInsecure(config: BridgeConfig, logger: Logger): void {
  if (config.mqtt.allowAnonymous) {
    logger.warn("ANONYMOUS MODE: devices connect without credentials; use only on a trusted network");
  }
  if (!isLoopbackHost(config.http.host)) {
    logger.warn({ host: config.http.host }, "the operator HTTP server is reachable from the network (token required)");
  }
}

/**
 * Shows a just-generated operator token once, as plain stdout lines and never through the logger: log lines get
 * shipped and shared, and the token stays readable later only from `<dataDir>/api-token` (mode 0600). The link is not
 * single-use: it carries the token itself, so it is worded as what it does, not "one-time".
 */
function printGeneratedToken(token: string, dashboard: string | undefined, tokenFile: string): void {
  const lines = [`operator API token (shown once; kept in ${tokenFile}): ${token}`];
  if (dashboard !== undefined) lines.push(`dashboard (signs in with the token): ${dashboardLink(dashboard, token)}`);
  process.stdout.write(`${lines.join("\n")}\n`);
}

/**
 * Shows a token this start generated when the bridge will not be up after all (its start failed, or a signal stopped
 * it first): now or never, since a later start finds the file and says only where it is. No link: nothing listens.
 */
function printGeneratedTokenOfUnstartedBridge(bridge: Bridge, dataDir: string): void {
  if (bridge.apiTokenSource === "generated")
    printGeneratedToken(bridge.apiToken, undefined, join(dataDir, API_TOKEN_FILE));
}

/** The base URL of an HTTP listener, as a browser on this machine reaches it. */
function httpBaseUrl(address: { host: string; port: number }): string {
  return `${listenerUrl("http", address)}/`;
}

/**
 * Runs the bridge until a signal. Resolves with the exit code; the caller exits with it once stdout drained.
 */
export async function runStart(flags: Flags, overrides?: Readonly<Record<string, unknown>>): Promise<number> {
  const { config, sources } = loadConfigWithSourcesOrExit(flags, process.env, overrides);
  const logger = createLogger({ level: config.log.level });
  warnInsecure(config, logger);
  // A fault nothing caught is a bug: log it as one line an operator can find, then exit. Staying up in an unknown
  // state is worse; nothing acknowledged is lost, because acknowledgements follow commits.
  for (const event of ["uncaughtException", "unhandledRejection"] as const) {
    process.on(event, (err: unknown) => {
      logger.fatal({ err, event }, "uncaught fault: exiting");
      process.exit(EXIT_FAILURE);
    });
  }
  // Heard before the bridge is built (its modules load, agent classes import: a second or more), not after: a signal
  // then, with no listener, killed the process by its default action (not exit 0) and left the lock file behind.
  // One that arrives before the build ends is answered by a stop once it has.
  let built = false;
  let signalWhileBuilding: StopSignal | undefined;
  let resolveDone: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => {
    resolveDone = resolve;
  });
  onStopSignals({
    stop: (signal) => {
      if (built) void stop(signal).then(resolveDone);
      else signalWhileBuilding = signal;
    },
    // A terminal's Ctrl-C under `npm start` arrives twice (stop-signals.ts): not a request to force the exit.
    repeated: (signal) => logger.debug({ signal }, "the same signal again: already stopping"),
    force: (signal) => {
      logger.warn({ signal }, "second signal: forcing exit");
      process.exit(EXIT_FAILURE);
    },
  });
  // Loaded here, not at the top, so `devices` and `--help` never pay for the runtime, broker and engine client.
  const { createBridge } = await import("../bridge.ts");
  let bridge: Bridge;
  try {
    bridge = await createBridge(config, { logger });
  } catch (err) {
    // A bad agents.config option or a setting the engine client refuses, an unusable agents.classes entry, another
    // bridge on the data directory, an unusable api-token file: the operator's to resolve, one plain line each.
    exitOnBridgeBuildError(err, sources);
    logger.fatal({ err }, "bridge could not be built");
    throw new CliExit(EXIT_FAILURE, "start failed");
  }
  let stopping: Promise<number> | undefined;

  const stop = (signal: StopSignal): Promise<number> => {
    logger.info({ signal }, "stopping: no new connections, draining mailboxes");
    const timer = setTimeout(() => {
      logger.error({ timeoutMs: config.shutdown.timeoutMs }, "graceful stop took too long: forcing exit");
      process.exit(EXIT_FAILURE);
    }, config.shutdown.timeoutMs);
    timer.unref();
    const result = bridge.stop().then(
      () => {
        logger.info("stopped");
        return 0;
      },
      (err: unknown) => {
        logger.error({ err }, "stop failed");
        return EXIT_FAILURE;
      },
    );
    stopping = result;
    return result;
  };

  built = true;
  // Nothing listens yet: the stop closes what the build opened and releases the lock (exit 0, as for any stop).
  if (signalWhileBuilding !== undefined) {
    printGeneratedTokenOfUnstartedBridge(bridge, config.dataDir);
    return stop(signalWhileBuilding);
  }
  try {
    const addresses = await bridge.start();
    const dashboard = addresses.http ? httpBaseUrl(addresses.http) : undefined;
    // Where the token is, never what: a later start prints nothing else, and an operator who missed the first start's
    // lines must still find it. A configured token is the operator's own.
    const tokenFile = bridge.apiTokenSource === "configured" ? undefined : join(config.dataDir, API_TOKEN_FILE);
    logger.info(
      {
        addresses,
        dashboard,
        dataDir: config.dataDir,
        apiTokenFile: tokenFile,
        engines: config.engine.urls.length,
        // "off" only when the operator passed node --no-memory-reducer (app/node-flags.ts says what it trades).
        memoryReducer: memoryReducerOff() ? "off" : "on",
      },
      "bridge started",
    );
    if (bridge.apiTokenSource === "generated") printGeneratedToken(bridge.apiToken, dashboard, tokenFile ?? "");
  } catch (err) {
    // A signal during start stops the bridge on purpose (BRIDGE_ERR_STOPPED): a graceful stop, not a failed start.
    if (stopping !== undefined && hasErrorCode(err, "BRIDGE_ERR_STOPPED")) {
      printGeneratedTokenOfUnstartedBridge(bridge, config.dataDir);
      return stopping;
    }
    logger.fatal({ err }, "bridge failed to start");
    printGeneratedTokenOfUnstartedBridge(bridge, config.dataDir);
    await bridge.stop().catch(() => undefined);
    throw new CliExit(EXIT_FAILURE, "start failed");
  }
  return done;
}

/** Adds the `start` command to `program`. */
export function registerStartCommand(program: Command): void {
  addBridgeFlags(program.command("start").description("start the bridge (MQTT broker, agents, operator HTTP)")).action(
    async (flags: Flags) => {
      process.exitCode = await runStart(flags);
    },
  );
}
