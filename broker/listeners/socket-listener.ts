/**
 * MQTT over TCP and over TLS: a net or tls server whose sockets are handed to aedes. Sockets are tracked so
 * `close()` can end those that never sent CONNECT (aedes only knows connected clients). Behind a load balancer that
 * speaks the PROXY protocol, a raw TCP socket first passes the proxy gate (proxy-protocol/), which reads the header
 * off it; a TLS handshake then runs on the rest, since a TLS-passthrough balancer writes its header before the
 * client's ClientHello.
 */
import net from "node:net";
import tls from "node:tls";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { BridgeError } from "../../errors/index.ts";
import { BrokerErrorCode } from "../errors.ts";
import type { BrokerTransportKind } from "../observer.ts";
import { ClientAddressHandOff, createProxyGate, type ProxyGateOptions } from "./proxy-protocol/index.ts";

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
  /**
   * Every connection starts with a PROXY protocol header from a trusted source, and counts under the client address
   * it names (proxy-protocol/proxy-gate.ts). Default: off (the peer's own address counts).
   */
  proxyProtocol?: ProxyGateOptions;
}

function ignoreError(): void {}

/**
 * A TLS server's `tlsClientError`: the handshake failed or did not finish within `handshakeTimeout` (Node's default
 * 120 s). Node destroys the socket for a failed handshake but only reports a timed-out one, so a peer that connects and
 * never sends its ClientHello would keep its socket, and its place under `maxSockets`, for as long as it likes.
 */
function endFailedHandshake(_err: Error, socket: tls.TLSSocket): void {
  socket.destroy();
}

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
  /** Hands a socket to the broker; `track` keeps it already. */
  const handOver = (socket: net.Socket, remoteAddress = socket.remoteAddress ?? ""): void => {
    // Small MQTT packets (a PUBACK) must not wait for Nagle's algorithm and the peer's delayed ACK.
    socket.setNoDelay(true);
    options.accept(socket, options.kind, remoteAddress);
  };
  const onSocket = (socket: net.Socket, remoteAddress?: string): void => {
    track(socket);
    handOver(socket, remoteAddress);
  };
  // Aborted as `close()` begins: connections still waiting for their PROXY protocol header then just close.
  const closing = new AbortController();
  const proxyProtocol = options.proxyProtocol;
  const server =
    proxyProtocol === undefined
      ? plainServer(options, onSocket, track)
      : proxiedServer(options, { ...proxyProtocol, closing: closing.signal }, { onSocket, handOver, track });
  return listen(options, server, sockets, closing);
}

/** A listener without the PROXY protocol: the net or tls server takes the connections itself. */
function plainServer(
  options: SocketListenerOptions,
  onSocket: (socket: net.Socket) => void,
  track: (socket: net.Socket) => void,
): net.Server {
  const server =
    options.kind === "tls"
      ? tls.createServer(options.tls ?? {}, (socket) => onSocket(socket)).on("tlsClientError", endFailedHandshake)
      : net.createServer((socket) => onSocket(socket));
  // A TLS socket reaches `onSocket` only after its handshake; until then the TCP socket under it is tracked too, or
  // `close()` would wait for every peer that never sends its ClientHello (until the handshake timeout closes it).
  if (options.kind === "tls") server.on("connection", track);
  return server;
}

/** What a listener does with its sockets (see `listenSockets`). */
interface SocketHandling {
  /** Keeps a socket for `close()` and registers its close and error listeners; once per socket. */
  track(socket: net.Socket): void;
  /** Hands a socket `track` keeps already to the broker, under `remoteAddress` (default: its peer's). */
  handOver(socket: net.Socket, remoteAddress?: string): void;
  /** `track`, then `handOver`. */
  onSocket(socket: net.Socket, remoteAddress?: string): void;
}

/**
 * A listener behind PROXY protocol balancers: a net server takes every raw connection, the gate reads its header, then
 * a TCP socket goes to the broker and a TLS one to a tls server that never listens itself: Node's documented way to
 * hand it a connection is to emit `connection` with the socket, whose unread bytes (the ClientHello after the header)
 * the handshake then reads first.
 */
function proxiedServer(
  options: SocketListenerOptions,
  proxyProtocol: ProxyGateOptions,
  { track, handOver, onSocket }: SocketHandling,
): net.Server {
  const gate = createProxyGate(proxyProtocol);
  if (options.kind === "tcp") {
    return net.createServer((raw) => {
      track(raw);
      // The raw socket is the one the broker gets: tracked once, above.
      gate(raw, (remoteAddress) => handOver(raw, remoteAddress));
    });
  }
  const handOff = new ClientAddressHandOff();
  const secure = tls
    .createServer(options.tls ?? {}, (socket) => {
      const handed = handOff.take(socket);
      if (handed.status === "found") {
        onSocket(socket, handed.address);
        return;
      }
      // Never served under the balancer's address: the whole fleet would share its failure allowance and log lines.
      if (handed.status === "missing") {
        proxyProtocol.onRefused?.({
          peer: socket.remoteAddress ?? "",
          reason: "address-lost",
          detail: "the client address of its PROXY protocol header was not found once its TLS handshake ended",
        });
      }
      socket.destroy();
    })
    .on("tlsClientError", endFailedHandshake);
  return net.createServer((raw) => {
    track(raw);
    gate(raw, (remoteAddress) => {
      handOff.keep(raw, remoteAddress);
      secure.emit("connection", raw);
    });
  });
}

/** Binds `server`; rejects with BRIDGE_ERR_BROKER_LISTEN (keeping the system error as cause). */
function listen(
  options: SocketListenerOptions,
  server: net.Server,
  sockets: Set<net.Socket>,
  closing: AbortController,
): Promise<SocketListener> {
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
            closing.abort();
            for (const socket of sockets) socket.destroy();
          }),
      });
    });
  });
}
