/**
 * MQTT over WebSocket. The app's HTTP server owns the port and calls `handleUpgrade` for upgrade requests; the
 * WebSocket becomes a byte stream (ws createWebSocketStream) that aedes reads like a TCP socket.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { createWebSocketStream, WebSocketServer } from "ws";
import type { AcceptFn } from "./socket-listener.ts";

export interface WebSocketEndpoint {
  /** Takes the upgrade when the path matches; returns false (socket untouched) otherwise. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  close(): Promise<void>;
}

export function createWebSocketEndpoint(options: {
  path: string;
  maxPayloadBytes: number;
  accept: AcceptFn;
}): WebSocketEndpoint {
  // MQTT clients offer the "mqtt" subprotocol (older ones "mqttv3.1"); answer with the one they offered.
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxPayloadBytes,
    handleProtocols: (protocols) => (protocols.has("mqtt") ? "mqtt" : (protocols.values().next().value ?? false)),
  });
  let closed = false;
  return {
    handleUpgrade(req, socket, head) {
      const path = (req.url ?? "").split("?")[0];
      if (path !== options.path) return false;
      if (closed) {
        socket.destroy();
        return true;
      }
      socket.on("error", () => {});
      wss.handleUpgrade(req, socket, head, (ws) => {
        const stream: Duplex & { remoteAddress?: string } = createWebSocketStream(ws);
        stream.on("error", () => {});
        // The peer's address on the stream itself, as a TCP socket has it: the broker drops its per-connection facts
        // once a session is accepted, and a later fault (a packet too large) is still logged with the address.
        stream.remoteAddress = req.socket.remoteAddress ?? "";
        options.accept(stream, "ws", stream.remoteAddress, req);
      });
      return true;
    },
    close() {
      closed = true;
      for (const ws of wss.clients) ws.terminate();
      return new Promise((resolve) => wss.close(() => resolve()));
    },
  };
}
