/**
 * The WebSocket agent endpoint `/agents/{id}` (ws, noServer): authenticates the upgrade, then hands each socket
 * to an AgentSocketSession. The HTTP server's upgrade dispatch calls `handleUpgrade`.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer } from "ws";
import type { AgentHost } from "../../agents/host.ts";
import { isValidDeviceId } from "../../codecs/device-id.ts";
import { bearerToken, tokensEqual } from "../api/auth.ts";
import type { SocketObserver } from "../metrics/metrics.ts";
import { AgentSocketSession, type SessionLogger } from "./session.ts";

/** Options of `createAgentSocketServer`. */
export interface AgentSocketServerOptions {
  /** The agent runtime (or any AgentHost). */
  host: AgentHost;
  /** Operator token; sent as `Authorization: Bearer` or, from browsers, `?token=`. */
  apiToken: string;
  /**
   * Whether `/agents/{id}` may be reached; false answers 404 before the upgrade. Default: every valid id.
   * The bridge passes a registry check so a token holder cannot create agents for unknown ids.
   */
  agentExists?: (agentId: string) => boolean | Promise<boolean>;
  /** Path prefix. Default "/agents/". */
  pathPrefix?: string;
  /** Largest message accepted, bytes; larger closes the socket with 1009. Default 65536. */
  maxMessageBytes?: number;
  /** Client messages queued per socket before reading pauses. Default 32. */
  maxPendingMessages?: number;
  /** Malformed messages tolerated per socket before it is closed with 1008. Default 10. */
  maxProtocolErrors?: number;
  /** Open sockets at most; one more is refused with HTTP 503 before the upgrade. Default 1024. */
  maxSockets?: number;
  /**
   * Bytes that may wait to be written to one client (ws `bufferedAmount`: it stopped reading, or reads slower than
   * its agent sends). A send that finds this much still waiting closes the socket with 1013 instead, counted as
   * BRIDGE_ERR_WS_SLOW_CONSUMER. Memory held for clients stays under maxSockets times this, plus one message each.
   * Default 4 MiB.
   */
  maxBufferedBytes?: number;
  /**
   * At a stop, how long clients get to answer the 1001 close frame (one that reads slowly is still being written what
   * was queued for it) before their sockets are cut, which they see as an abnormal close (1006), ms. 0 cuts at once.
   * The bridge takes it out of `shutdown.timeoutMs`. Default 1000.
   */
  closeGraceMs?: number;
  observer?: SocketObserver;
  logger?: SessionLogger;
  /** Connection id source. Default `ws-` + random UUID. */
  newConnectionId?: () => string;
}

/** Defaults of the optional options. */
export const AGENT_SOCKET_DEFAULTS = {
  pathPrefix: "/agents/",
  maxMessageBytes: 65536,
  maxPendingMessages: 32,
  maxProtocolErrors: 10,
  maxSockets: 1024,
  maxBufferedBytes: 4 * 1024 * 1024,
  closeGraceMs: 1000,
} as const;

export interface AgentSocketServer {
  /** True when `pathname` belongs to this endpoint (for the upgrade dispatch). */
  matches(pathname: string): boolean;
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void;
  /**
   * Closes every socket with 1001, cuts those whose close handshake has not finished within `closeGraceMs`, and waits
   * until their agents saw the close.
   */
  close(): Promise<void>;
  /** Open sockets. */
  readonly size: number;
}

/** What the server reports to when given no observer: nothing listens. */
export const NO_SOCKET_OBSERVER: SocketObserver = Object.freeze({
  opened() {},
  closed() {},
  messageIn() {},
  messageOut() {},
  protocolError() {},
  limitBreach() {},
});
const noopLogger: SessionLogger = { debug() {}, warn() {} };

/**
 * Creates the endpoint.
 *
 * @example
 * const sockets = createAgentSocketServer({ host: runtime, apiToken, agentExists: (id) => registry.get(id) !== undefined });
 * upgradeRoutes.push({ name: "agents", match: sockets.matches, handle: sockets.handleUpgrade });
 */
export function createAgentSocketServer(options: AgentSocketServerOptions): AgentSocketServer {
  const o = { ...AGENT_SOCKET_DEFAULTS, ...stripUndefined(options) };
  const positive = [
    "maxMessageBytes",
    "maxPendingMessages",
    "maxProtocolErrors",
    "maxSockets",
    "maxBufferedBytes",
  ] as const;
  for (const field of positive) {
    if (!Number.isInteger(o[field]) || o[field] < 1) throw new RangeError(`${field} must be a positive integer`);
  }
  if (!Number.isInteger(o.closeGraceMs) || o.closeGraceMs < 0) {
    throw new RangeError("closeGraceMs must be an integer >= 0");
  }
  if (typeof o.apiToken !== "string" || o.apiToken === "") throw new TypeError("apiToken must be a non-empty string");
  const observer = o.observer ?? NO_SOCKET_OBSERVER;
  const logger = o.logger ?? noopLogger;
  const newId = o.newConnectionId ?? (() => `ws-${randomUUID()}`);
  const wss = new WebSocketServer({ noServer: true, maxPayload: o.maxMessageBytes });
  const sessions = new Set<AgentSocketSession>();
  let closing = false;

  const matches = (pathname: string): boolean => pathname.startsWith(o.pathPrefix);

  async function upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    let url: URL;
    let agentId: string;
    try {
      url = new URL(request.url ?? "/", "http://localhost");
      agentId = decodeURIComponent(url.pathname.slice(o.pathPrefix.length));
    } catch {
      return refuse(socket, 400, "Bad Request");
    }
    if (closing) return refuse(socket, 503, "Service Unavailable");
    if (!isValidDeviceId(agentId)) return refuse(socket, 400, "Bad Request");
    const given = bearerToken(request.headers.authorization) ?? url.searchParams.get("token") ?? undefined;
    if (given === undefined || !tokensEqual(given, o.apiToken)) return refuse(socket, 401, "Unauthorized");
    if (o.agentExists !== undefined && !(await o.agentExists(agentId))) return refuse(socket, 404, "Not Found");
    if (closing || socket.destroyed) return refuse(socket, 503, "Service Unavailable");
    // Counted after every await, right before the upgrade, so concurrent upgrades cannot overshoot.
    if (wss.clients.size >= o.maxSockets) return refuse(socket, 503, "Service Unavailable");
    const readonlyParam = url.searchParams.get("readonly");
    const readonly = readonlyParam === "1" || readonlyParam === "true";
    wss.handleUpgrade(request, socket, head, (ws) => {
      const session = new AgentSocketSession(ws, {
        host: o.host,
        agentId,
        connectionId: newId(),
        readonly,
        context: {
          transport: "ws",
          remoteAddress: request.socket.remoteAddress,
          userAgent: request.headers["user-agent"],
          readonly,
        },
        observer,
        logger,
        maxPendingMessages: o.maxPendingMessages,
        maxProtocolErrors: o.maxProtocolErrors,
        maxBufferedBytes: o.maxBufferedBytes,
      });
      sessions.add(session);
      ws.on("close", () => {
        void session.settled().then(() => sessions.delete(session));
      });
    });
  }

  return {
    matches,
    handleUpgrade(request, socket, head) {
      socket.on("error", (err) => logger.debug({ err }, "agent socket upgrade error"));
      upgrade(request, socket, head).catch((err) => {
        logger.warn({ err }, "agent socket upgrade failed");
        refuse(socket, 500, "Internal Server Error");
      });
    },
    async close() {
      closing = true;
      const open = [...sessions];
      for (const s of open) s.shutdown();
      // The close frame may wait behind what was queued for a slow reader; cutting the socket at once drops it, and
      // the client sees 1006 instead of 1001. A bounded wait lets it arrive without letting a stalled client hold the
      // stop open.
      const allClosed = Promise.all(open.map((s) => s.socketClosed()));
      let graceTimer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<void>((resolve) => {
        graceTimer = setTimeout(resolve, o.closeGraceMs);
      });
      await Promise.race([allClosed, graceOver]);
      clearTimeout(graceTimer);
      for (const s of open) s.terminate();
      for (const client of wss.clients) client.terminate();
      await allClosed;
      await Promise.all(open.map((s) => s.settled()));
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
    get size() {
      return wss.clients.size;
    },
  };
}

function refuse(socket: Duplex, status: number, reason: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  // Destroy only once the status line is flushed, or the client sees a reset instead of the status.
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy());
}

function stripUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
