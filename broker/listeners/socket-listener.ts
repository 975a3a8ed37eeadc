/**
 * MQTT over TCP and over TLS: a net or tls server whose sockets are handed to aedes. Sockets are tracked so
 * `close()` can end those that never sent CONNECT (aedes only knows connected clients).
 */
import net from "node:net";
import tls from "node:tls";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { BridgeError } from "../../errors/index.ts";
import { BrokerErrorCode } from "../errors.ts";
import type { BrokerTransportKind } from "../observer.ts";

/** Where a listener is bound. */
export interface BoundAddress {
  host: string;
  port: number;
}

export interface SocketListener {
  readonly kind: BrokerTransportKind;
  address(): BoundAddress;
  /** Stops accepting, destroys every socket still open, resolves when the server closed. */
  close(): Promise<void>;
}

export type AcceptFn = (
  stream: Duplex,
  kind: BrokerTransportKind,
  remoteAddress: string,
  req?: IncomingMessage,
) => void;

export interface SocketListenerOptions {
  kind: "tcp" | "tls";
  host: string;
  port: number;
  tls?: tls.TlsOptions;
  accept: AcceptFn;
  /** Sockets this listener holds at most, CONNECT sent or not; more are closed as they arrive. Default: no bound. */
  maxSockets?: number;
  /** Told of each socket closed on arrival because `maxSockets` sockets are open. */
  onFull?: (remoteAddress: string) => void;
}

function ignoreError(): void {}

/** Binds a TCP or TLS listener; rejects with BRIDGE_ERR_BROKER_LISTEN (keeping the system error as cause). */
export function listenSockets(options: SocketListenerOptions): Promise<SocketListener> {
  const sockets = new Set<net.Socket>();
  // One listener function per server, not two closures per socket (10,000 idle devices keep 10,000 sockets); `close`
  // is emitted once, so `on` saves the wrapper `once` would allocate.
  const forget = function (this: net.Socket): void {
    sockets.delete(this);
  };
  const track = (socket: net.Socket): void => {
    sockets.add(socket);
    socket.on("close", forget);
    // A device that vanishes mid-handshake must never surface as an unhandled error.
    socket.on("error", ignoreError);
  };
  const onSocket = (socket: net.Socket): void => {
    track(socket);
    // Small MQTT packets (a PUBACK) must not wait for Nagle's algorithm and the peer's delayed ACK.
    socket.setNoDelay(true);
    options.accept(socket, options.kind, socket.remoteAddress ?? "");
  };
  const server =
    options.kind === "tls"
      ? tls.createServer(options.tls ?? {}, onSocket).on("tlsClientError", () => {})
      : net.createServer(onSocket);
  // A TLS socket reaches `onSocket` only after its handshake; until then the TCP socket under it is tracked too, or
  // `close()` would wait for every peer that never sends its ClientHello (Node's handshake timeout is 120 s).
  if (options.kind === "tls") server.on("connection", track);
  if (options.maxSockets !== undefined) server.maxConnections = options.maxSockets;
  // Node closes a socket over maxConnections before any of our code sees it: `drop` is the only trace of it (for TLS,
  // the TCP socket is refused before its handshake).
  const onFull = options.onFull;
  if (onFull !== undefined) server.on("drop", (data) => onFull(data?.remoteAddress ?? ""));
  return new Promise((resolve, reject) => {
    const onError = (cause: Error): void => {
      reject(
        new BridgeError(
          BrokerErrorCode.listen,
          `cannot listen for MQTT over ${options.kind} on ${options.host}:${options.port}`,
          { host: options.host, port: options.port },
          { cause },
        ),
      );
    };
    server.once("error", onError);
    server.listen(options.port, options.host, () => {
      server.off("error", onError);
      server.on("error", () => {});
      const bound = server.address() as net.AddressInfo;
      resolve({
        kind: options.kind,
        address: () => ({ host: bound.address, port: bound.port }),
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            for (const socket of sockets) socket.destroy();
          }),
      });
    });
  });
}
