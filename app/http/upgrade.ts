/**
 * Dispatches HTTP upgrade requests (WebSocket) by path: `/mqtt` to the broker, `/agents/{id}` to the agent socket
 * endpoint. Anything else is refused with a plain HTTP status on the raw socket, since no WebSocket exists yet.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";

/**
 * Takes over an upgrade request's socket (ws `handleUpgrade` shape). Returning `false` means "not mine after all":
 * the dispatcher answers 404 and closes the socket.
 */
export type UpgradeHandler = (request: IncomingMessage, socket: Duplex, head: Buffer) => unknown;

export interface UpgradeRoute {
  /** For logs and errors, e.g. "mqtt". */
  name: string;
  /** True when this route serves `pathname`. */
  match(pathname: string): boolean;
  handle: UpgradeHandler;
}

function refuse(socket: Duplex, status: number, reason: string): void {
  if (socket.writable) socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  socket.destroy();
}

/**
 * Builds the `upgrade` listener. `accepting()` is false while the bridge stops: new sockets are refused with 503
 * so a shutdown drains instead of taking new work.
 */
export function createUpgradeDispatcher(
  routes: readonly UpgradeRoute[],
  logger: Logger,
  accepting: () => boolean,
): UpgradeHandler {
  return (request, socket, head) => {
    // A socket error before a handler owns it (client reset) must not become an uncaught exception.
    socket.on("error", (err) => logger.debug({ err }, "upgrade socket error"));
    let pathname: string;
    try {
      pathname = new URL(request.url ?? "/", "http://localhost").pathname;
    } catch {
      refuse(socket, 400, "Bad Request");
      return;
    }
    if (!accepting()) {
      refuse(socket, 503, "Service Unavailable");
      return;
    }
    const route = routes.find((r) => r.match(pathname));
    if (route === undefined) {
      refuse(socket, 404, "Not Found");
      return;
    }
    try {
      if (route.handle(request, socket, head) === false) refuse(socket, 404, "Not Found");
    } catch (err) {
      logger.error({ err, route: route.name }, "upgrade handler failed");
      refuse(socket, 500, "Internal Server Error");
    }
  };
}
