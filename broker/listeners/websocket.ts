/**
 * MQTT over WebSocket. The app's HTTP server owns the port and calls `handleUpgrade` for upgrade requests; the
 * WebSocket becomes a byte stream (websocket-stream.ts) that aedes reads like a TCP socket. Like a TCP listener, the
 * endpoint holds at most `maxSockets` WebSockets, CONNECT sent or not; more upgrades are refused with a 503. Refusals,
 * session ends and shutdown are graceful and bounded: the client gets the answer (the 503, the CONNACK, a close frame
 * with its code) before its TCP connection closes.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import WebSocket, { WebSocketServer } from "ws";
import { type Clock, systemClock } from "../clock.ts";
import type { AcceptFn } from "./socket-listener.ts";
import { TrustedProxies } from "./trusted-proxies.ts";
import { WebSocketCloseCode } from "./websocket-close-code.ts";
import { createGracefulWebSocketStream } from "./websocket-stream.ts";

/**
 * How long a closing MQTT WebSocket waits for the client's close frame, and a refused upgrade for its answer to be
 * written, before the TCP connection is cut (ws' own default is 30 s). One round trip is enough for a live client; the
 * bound is for one that stopped reading, which would otherwise hold its socket, and its place under `maxSockets`.
 */
export const WEBSOCKET_CLOSE_TIMEOUT_MS = 2000;

export interface WebSocketEndpoint {
  /** Takes the upgrade when the path matches; returns false (socket untouched) otherwise. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  close(): Promise<void>;
}

export interface WebSocketEndpointOptions {
  path: string;
  maxPayloadBytes: number;
  accept: AcceptFn;
  /** WebSockets this endpoint holds at most, CONNECT sent or not; more upgrades get a 503. Default: no bound. */
  maxSockets?: number;
  /** Told of each upgrade refused because `maxSockets` WebSockets are open. */
  onFull?: (remoteAddress: string) => void;
  /** Times the bounded waits of a closing connection. Default: the system clock. */
  clock?: Clock;
  /** Reverse proxies whose `X-Forwarded-For` names the client (options.ts, `websocket.trustedProxies`). Default: none. */
  trustedProxies?: readonly string[];
  /** How long `close()` lets each WebSocket answer its close frame (options.ts, `websocket.closeGraceMs`). */
  closeGraceMs?: number;
  /** Told of a client's text frame (a protocol violation), right before its connection is closed for it with 1003. */
  onTextFrame?: (stream: Duplex) => void;
}

/**
 * Refuses an upgrade on the raw socket (no WebSocket exists yet) with a status and a short plain-text reason. As ws'
 * own `abortHandshake`, the socket is destroyed once the answer is written (`finish`), not right after `end()`: a
 * write still queued then (a TLS socket, a full send buffer) would be dropped with the socket, and the client would
 * see a reset instead of the reason. Bounded by WEBSOCKET_CLOSE_TIMEOUT_MS for a client that does not read.
 */
function refuseUpgrade(socket: Duplex, clock: Clock, status: number, reason: string, message: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = Buffer.from(`${message}\n`, "utf8");
  const cut = clock.setTimeout(() => socket.destroy(), WEBSOCKET_CLOSE_TIMEOUT_MS);
  socket.once("close", () => clock.clearTimeout(cut));
  socket.once("finish", () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${body.length}\r\n\r\n${body.toString("utf8")}`,
  );
}

/**
 * The path a request target names, in origin form (`/mqtt?x=1`) or in absolute form (`http://host:port/mqtt`, which
 * some forward proxies send and RFC 9112 section 3.2.2 says a server MUST accept); undefined when it is no URL at all.
 * Parsed as the app's upgrade dispatch parses it (app/http/upgrade.ts), so both agree on the path a request names.
 */
function targetPath(target: string | undefined): string | undefined {
  try {
    return new URL(target ?? "/", "http://localhost").pathname;
  } catch {
    return undefined;
  }
}

export function createWebSocketEndpoint(options: WebSocketEndpointOptions): WebSocketEndpoint {
  // MQTT clients offer the "mqtt" subprotocol (older ones "mqttv3.1"); answer with the one they offered.
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxPayloadBytes,
    handleProtocols: (protocols) => (protocols.has("mqtt") ? "mqtt" : (protocols.values().next().value ?? false)),
  });
  const clock = options.clock ?? systemClock;
  const proxies = new TrustedProxies(options.trustedProxies ?? []);
  let closed = false;
  return {
    handleUpgrade(req, socket, head) {
      if (targetPath(req.url) !== options.path) return false;
      socket.on("error", () => {});
      // Behind a trusted reverse proxy, the client it forwards for; otherwise the peer itself.
      const remoteAddress = proxies.clientAddress(req.socket.remoteAddress ?? "", req.headers["x-forwarded-for"]);
      if (closed) {
        refuseUpgrade(socket, clock, 503, "Service Unavailable", "the MQTT broker is shutting down");
        return true;
      }
      // ws adds a WebSocket to `clients` within `handleUpgrade` itself, so this count includes every upgrade before
      // this one, and concurrent upgrades cannot overshoot. Without a bound, a flood of WebSockets that never send
      // CONNECT would use file descriptors until the process could open no database, as for TCP.
      if (options.maxSockets !== undefined && wss.clients.size >= options.maxSockets) {
        options.onFull?.(remoteAddress);
        refuseUpgrade(
          socket,
          clock,
          503,
          "Service Unavailable",
          `too many MQTT over WebSocket connections (at most ${options.maxSockets}); try again later`,
        );
        return true;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        const stream: Duplex & { remoteAddress?: string } = createGracefulWebSocketStream(ws, {
          closeTimeoutMs: WEBSOCKET_CLOSE_TIMEOUT_MS,
          clock,
          socket,
          onTextFrame: options.onTextFrame,
        });
        stream.on("error", () => {});
        // The client's address on the stream itself, as a TCP socket has it: the broker drops its per-connection facts
        // once a session is accepted, and a later fault (a packet too large) is still logged with the address.
        stream.remoteAddress = remoteAddress;
        options.accept(stream, "ws", stream.remoteAddress, req);
      });
      return true;
    },
    close() {
      closed = true;
      // Each client learns the broker is going away (1001), as a refused one learns why, and each wait is bounded on
      // the broker's clock, so a client that never answers cannot hold the shutdown. Terminating them at once cut
      // every WebSocket without a close frame: clients saw 1006, an abnormal closure. A WebSocket already closing (its
      // session ended) gets the same bound, which may be shorter than its own.
      const grace = options.closeGraceMs ?? WEBSOCKET_CLOSE_TIMEOUT_MS;
      for (const ws of wss.clients) {
        const cut = clock.setTimeout(() => ws.terminate(), grace);
        ws.once("close", () => clock.clearTimeout(cut));
        if (ws.readyState === WebSocket.OPEN) ws.close(WebSocketCloseCode.goingAway, "MQTT broker shutting down");
      }
      // Calls back once every WebSocket has closed.
      return new Promise((resolve) => wss.close(() => resolve()));
    },
  };
}
