/**
 * The operator HTTP server: fastify with `/healthz`, `/readyz` and named checks at `/readyz/{name}`, the upgrade
 * dispatch for WebSocket paths, and whatever the operator surface registers (REST API, metrics, dashboard).
 */
import type { Server as NodeServer } from "node:http";
import type { AddressInfo } from "node:net";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from "fastify";
import type { Logger } from "pino";
import { BridgeError } from "../../errors/index.ts";
import { API_ERROR_CODES, sendError } from "../api/errors.ts";
import { API_MAX_PARAM_LENGTH } from "../api/register.ts";
import type { ReadinessCheck } from "./engine-readiness.ts";
import { readinessAccess } from "./readiness-access.ts";
import { createUpgradeDispatcher, type UpgradeRoute } from "./upgrade.ts";

/** What `/readyz` reports. Ready only after every listener is up; ports are the real ones (port 0 resolved). */
export interface Readiness {
  ready: boolean;
  /** "starting", "ready", "stopping". */
  phase: string;
  listeners: Record<string, { host: string; port: number } | undefined>;
}

export interface HttpServerOptions {
  /** Bind address. */
  host: string;
  /** Port; 0 picks a free one. */
  port: number;
  logger: Logger;
  readiness: () => Readiness;
  upgradeRoutes: readonly UpgradeRoute[];
  /**
   * Named checks served at `/readyz/{name}` (e.g. `engine`), each answering 200 or 503 with its own body. Apart from
   * `/readyz`, which says only whether the bridge serves devices. Default: none.
   */
  readinessChecks?: Readonly<Record<string, ReadinessCheck>>;
  /**
   * The operator API token. A named check's full answer (replica URLs, error text) goes only to a request that sends
   * it as `Authorization: Bearer`; a request without an `Authorization` header gets the check's public answer, one
   * with any other (another token, a malformed one, another scheme) a 401. Default: none, so every request gets the
   * public answer.
   */
  apiToken?: string;
  /** Largest request body, bytes. Default 1 MiB. */
  bodyLimitBytes?: number;
  /**
   * How long `close()` lets requests in progress finish, ms; connections still open then are cut. Default 3000.
   */
  closeGraceMs?: number;
  /**
   * A request head must have arrived within this many ms of its first byte, else 408 and the connection is closed.
   * Default 15000 (Node's own: 60000). Upgraded WebSockets are not timed by it.
   */
  headersTimeoutMs?: number;
  /**
   * A whole request, head and body, must have arrived within this many ms, else 408 (the time to answer it is not
   * counted). At least `headersTimeoutMs`. Default 30000 (fastify's own: none).
   */
  requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this many ms. Default 5000 (fastify's own: 72000). */
  keepAliveTimeoutMs?: number;
  /**
   * Connections held at once; one more is closed as it arrives (Node's `server.maxConnections`). Upgraded WebSockets
   * (MQTT over WebSocket devices, agent clients) keep counting for as long as they are open. Default 12288.
   */
  maxConnections?: number;
  /**
   * Time source of the refused-connection log's rate limit, a clock that never steps (a wall clock set back would
   * silence the log for as long as the step). Default `performance.now()`.
   */
  monotonicNow?: () => number;
}

/** Defaults of the optional options. */
export const HTTP_SERVER_DEFAULTS = {
  bodyLimitBytes: 1024 * 1024,
  closeGraceMs: 3000,
  headersTimeoutMs: 15_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 12_288,
} as const;

/** Refused connections are logged at most once per this many ms, with how many were refused since. */
const DROP_LOG_INTERVAL_MS = 10_000;

export interface HttpServer {
  readonly app: FastifyInstance;
  /** Starts listening; resolves with the real address. */
  listen(): Promise<{ host: string; port: number }>;
  /** Refuses new upgrades from now on (shutdown has begun). */
  stopAccepting(): void;
  close(): Promise<void>;
}

/** Creates the server with its health routes; register more routes on `app` before `listen()`. */
export function createHttpServer(options: HttpServerOptions): HttpServer {
  const logger = options.logger.child({ component: "http" });
  const closeGraceMs = options.closeGraceMs ?? HTTP_SERVER_DEFAULTS.closeGraceMs;
  if (!Number.isInteger(closeGraceMs) || closeGraceMs < 0) {
    throw new RangeError("closeGraceMs must be an integer >= 0");
  }
  const limits = {
    headersTimeoutMs: options.headersTimeoutMs ?? HTTP_SERVER_DEFAULTS.headersTimeoutMs,
    requestTimeoutMs: options.requestTimeoutMs ?? HTTP_SERVER_DEFAULTS.requestTimeoutMs,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? HTTP_SERVER_DEFAULTS.keepAliveTimeoutMs,
    maxConnections: options.maxConnections ?? HTTP_SERVER_DEFAULTS.maxConnections,
  };
  for (const [field, value] of Object.entries(limits)) {
    // 0 means "never" to Node, which is what these options are here to prevent.
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`${field} must be a positive integer`);
  }
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new RangeError("headersTimeoutMs must not exceed requestTimeoutMs");
  }
  const app = Fastify({
    // Node checks the head and request timeouts of open connections every connectionsCheckingInterval (30 s by
    // default), which would let a stalled head live up to 30 s past headersTimeoutMs.
    http: {
      headersTimeout: limits.headersTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
    },
    // fastify sets these two on the server itself (its defaults: no request limit, 72 s keep-alive).
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    loggerInstance: logger as FastifyBaseLogger,
    // One line per request would drown the device logs; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimitBytes ?? HTTP_SERVER_DEFAULTS.bodyLimitBytes,
    // Idle keep-alive sockets would otherwise hold `close()` open until they time out.
    forceCloseConnections: "idle",
    // Every path parameter reaches its route's schema, which answers an over-long id naming it (register.ts).
    routerOptions: { maxParamLength: API_MAX_PARAM_LENGTH },
    // The router refuses some paths before any route or scope sees them (a malformed percent-encoding); they get the
    // operator API's error shape, not fastify's own.
    frameworkErrors: (error, _request, reply) => {
      const status = typeof error.statusCode === "number" && error.statusCode < 500 ? error.statusCode : 400;
      sendError(reply, status, API_ERROR_CODES.validation, error.message, "url");
    },
  });
  let accepting = true;

  // Health answers are never to be cached: a caching proxy or load balancer between an orchestrator and the bridge
  // would otherwise serve a stale "ok" or "ready" for a bridge that is stopping or gone.
  app.get("/healthz", async (_request, reply) => reply.header("cache-control", "no-store").send({ status: "ok" }));
  app.get("/readyz", async (_request, reply) => {
    const report = options.readiness();
    return reply
      .code(report.ready ? 200 : 503)
      .header("cache-control", "no-store")
      .send({ status: report.phase, listeners: report.listeners });
  });
  const checks = new Map(Object.entries(options.readinessChecks ?? {}));
  app.get<{ Params: { check: string } }>("/readyz/:check", async (request, reply) => {
    const access = readinessAccess(request.headers.authorization, options.apiToken);
    if (access === "refused") {
      reply.header("www-authenticate", 'Bearer realm="agent-bridge"');
      return sendError(
        reply,
        401,
        API_ERROR_CODES.unauthorized,
        "wrong token: send Authorization: Bearer <operator token> for the full answer, or no Authorization header",
      );
    }
    const check = checks.get(request.params.check);
    if (check === undefined) {
      const known = [...checks.keys()].join(", ") || "none";
      return sendError(
        reply,
        404,
        API_ERROR_CODES.notFound,
        `no readiness check is named ${request.params.check} (known: ${known})`,
      );
    }
    const result = await check();
    return reply
      .code(result.ready ? 200 : 503)
      .header("cache-control", "no-store")
      .send(access === "full" ? result.body : result.publicBody);
  });

  const dispatch = createUpgradeDispatcher(options.upgradeRoutes, logger, () => accepting);
  app.server.on("upgrade", dispatch);
  // An upgraded socket is still the server's connection to Node, so it counts until it closes: one bound on what the
  // port holds, WebSockets that have not (yet) authenticated included. Timeouts end once a socket is upgraded.
  app.server.maxConnections = limits.maxConnections;
  logRefusedConnections(app.server, logger, limits.maxConnections, options.monotonicNow ?? (() => performance.now()));

  return {
    app,
    async listen() {
      try {
        await app.listen({ host: options.host, port: options.port });
      } catch (cause) {
        // Node's own words name neither the server nor the setting; the MQTT listeners' failure names theirs.
        const reason = cause instanceof Error ? cause.message : String(cause);
        throw new BridgeError(
          "BRIDGE_ERR_HTTP_LISTEN",
          `cannot listen for the operator HTTP server on ${options.host}:${options.port} (http.host, http.port): ${reason}`,
          { host: options.host, port: options.port },
          { cause },
        );
      }
      const address = app.server.address() as AddressInfo;
      return { host: address.address, port: address.port };
    },
    stopAccepting() {
      accepting = false;
    },
    async close() {
      accepting = false;
      // app.close() waits for every request in progress. A client that stops in the middle of one (a head or a body
      // that never ends: anyone who reaches the port, token or not) is not idle to Node, so it held the stop until
      // Node's own timeouts (headersTimeout 60 s, requestTimeout 300 s), past shutdown.timeoutMs: the stop was forced
      // before the agents were drained. Requests in progress get the grace; what is still open then is cut.
      const closing = app.close();
      const cut = setTimeout(() => {
        logger.warn({ closeGraceMs }, "HTTP requests still open after the close grace; cutting their connections");
        app.server.closeAllConnections();
      }, closeGraceMs);
      try {
        await closing;
      } finally {
        clearTimeout(cut);
      }
    },
  };
}

/**
 * Logs connections the server closed at `maxConnections` (Node's `drop` event): the first at once, then at most one
 * line per DROP_LOG_INTERVAL_MS with how many were refused since, so a flood cannot flood the log too.
 */
function logRefusedConnections(
  server: NodeServer,
  logger: Logger,
  maxConnections: number,
  monotonicNow: () => number,
): void {
  let lastLogAt: number | undefined;
  let unlogged = 0;
  server.on("drop", () => {
    unlogged++;
    const at = monotonicNow();
    if (lastLogAt !== undefined && at - lastLogAt < DROP_LOG_INTERVAL_MS) return;
    logger.warn(
      { maxConnections, refused: unlogged },
      "HTTP connection refused: the server holds http.maxConnections connections (WebSockets included)",
    );
    lastLogAt = at;
    unlogged = 0;
  });
}
