/**
 * The embedded MQTT broker: aedes with its hooks wired to device auth, the ACL, the up path and the device
 * sessions, plus the TCP, TLS and WebSocket listeners.
 */
import fs from "node:fs";
import type { IncomingMessage } from "node:http";
import path from "node:path";
import type { Duplex } from "node:stream";
import { Aedes, type Client } from "aedes";
import type { CloseReason } from "../agents/host.ts";
import { BridgeError } from "../errors/index.ts";
import { type Clock, systemClock } from "./clock.ts";
import { ConnectGuard } from "./connect-guard/index.ts";
import type { DeviceConnection } from "./connection.ts";
import { DeviceCodecs } from "./device-codecs.ts";
import { closeFromServer } from "./hooks/connect.ts";
import { BrokerErrorCode } from "./errors.ts";
import { type ConnectFacts, installHooks, type StreamFacts } from "./hooks/index.ts";
import { socketsPerListener } from "./listener-bound.ts";
import { type BoundAddress, listenSockets, type SocketListener } from "./listeners/socket-listener.ts";
import { guardPacketSize } from "./listeners/packet-guard.ts";
import { createWebSocketEndpoint, type WebSocketEndpoint } from "./listeners/websocket.ts";
import { type BrokerStats, type BrokerTransportKind, ObserverHub } from "./observer.ts";
import { type BrokerOptions, resolveBrokerOptions } from "./options.ts";
import { packetRefusals } from "./packet-refusals.ts";
import { writePacketNumbersUncached } from "./packet-number-cache.ts";
import { proxyGateOptions } from "./proxy-refusals.ts";
import { Qos2InFlight } from "./qos2-inflight.ts";
import { keepaliveWarning, paceReads } from "./read-pacer.ts";
import { OfflineDownQueue } from "./offline-down-queue.ts";
import type { SessionStore } from "./persistent-session.ts";
import { markRedeliveries } from "./redelivery-dup.ts";
import { createDeviceRegistry, type DeviceRegistry } from "./registry/index.ts";
import { RegistryWatch } from "./registry-watch.ts";
import { SessionManager } from "./sessions.ts";
import { ThrottledWarning } from "./throttled-warning.ts";
import { createDownSender } from "./transport.ts";
import { DeviceRateLimits } from "./token-bucket.ts";
import { createUplink } from "./uplink.ts";

/** Where the broker listens. A listener that is off is absent. */
export interface BrokerAddresses {
  tcp?: BoundAddress;
  tls?: BoundAddress;
  /** Path served through `handleUpgrade` on the app's HTTP server. */
  websocket?: { path: string };
}

/** The calls of aedes' persistence the broker makes. */
interface AedesPersistence extends SessionStore {
  /** Rejects when the client holds no such QoS 2 message. */
  incomingGetPacket(client: Client, packet: { messageId: number }): Promise<unknown>;
  /** Drops the client's stored subscriptions to these filters (a persistent session's, restored at its reconnect). */
  removeSubscriptions(client: Client, topics: string[]): Promise<void>;
}

/** Why an operator ends a device's sessions (`Broker.endSessions`): its record was removed, or its secret revoked. */
export type SessionEndReason = Extract<CloseReason, "removed" | "revoked">;

/** A running broker. */
export interface Broker {
  /** The device registry the broker authenticates against. */
  readonly registry: DeviceRegistry;
  /** Binds the listeners; resolves with the real addresses (port 0 resolved). */
  start(): Promise<BrokerAddresses>;
  /** The bound addresses (after `start`). */
  addresses(): BrokerAddresses;
  /**
   * Hand an HTTP upgrade to the broker; true when it was for the MQTT WebSocket path (the broker owns the
   * socket from then on), false when the caller should handle it.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** True while the device has an open session. */
  isOnline(deviceId: string): boolean;
  /** Ids of devices with an open session. */
  connectedDevices(): string[];
  /**
   * Ends every live session of `deviceId` from the server side, closed as `reason` (the agent's `onClose` and the
   * counters see it): `revoked` for a rotated secret, `removed` for a removed device. The device must connect again,
   * with whatever secret the registry holds now. Returns how many sessions it ended.
   */
  endSessions(deviceId: string, reason: SessionEndReason): number;
  /** A copy of the broker's counters. */
  stats(): BrokerStats;
  /** Stops accepting, closes every session (reason "shutdown") and the listeners, flushes the registry. */
  close(): Promise<void>;
}

/** The registry the broker opens when given none: on the broker's clock, as the rest of its timing. */
function openOwnRegistry(dataDir: string, clock: Clock): DeviceRegistry {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 }); // owner only: registry.db holds the secrets' hashes
  return createDeviceRegistry({ path: path.join(dataDir, "registry.db"), clock });
}

/**
 * Creates the broker (validating options; throws BRIDGE_ERR_BROKER_CONFIG naming a bad field). Call `start()`.
 *
 * @example
 * const broker = createBroker({ host: runtime, dataDir: "./data", tcp: { host: "127.0.0.1", port: 0 } });
 * const { tcp } = await broker.start();
 * httpServer.on("upgrade", (req, socket, head) => broker.handleUpgrade(req, socket, head) || socket.destroy());
 */
export function createBroker(options: BrokerOptions): Broker {
  writePacketNumbersUncached();
  const opts = resolveBrokerOptions(options);
  const ownsRegistry = !opts.registry;
  const registry = opts.registry ?? openOwnRegistry(opts.dataDir!, opts.clock);
  const { logger, limits } = opts;
  const hub = new ObserverHub(opts.observer);
  // Read at call time, as `persistence` below: aedes is created further down, and its store in `listen()`.
  const offlineQueue = new OfflineDownQueue(
    () => persistence(),
    // What aedes' Packet does with every frame it is handed: its counter orders the broker's packets.
    () => ({ brokerId: aedes.id, brokerCounter: ++(aedes as unknown as { counter: number }).counter }),
    hub,
    logger,
    opts.clock,
  );
  const sender = createDownSender(
    hub,
    logger,
    opts.clock,
    opts.subscribeGraceMs,
    offlineQueue,
    limits.maxUnackedDownPerDevice,
  );
  const rateLimits = new DeviceRateLimits(
    limits.burstMessages,
    limits.messagesPerSecond,
    opts.clock,
    limits.maxConnections,
  );
  const deviceCodecs = new DeviceCodecs();
  const sessions = new SessionManager(
    opts.host,
    hub,
    logger,
    opts.clock,
    (c) => {
      rateLimits.release(c.deviceId);
      deviceCodecs.release(c.deviceId);
    },
    {
      settle: (c) => sender.discard(c),
      settled: (deviceId) => offlineQueue.settled(deviceId),
      queued: (c, earlier) => offlineQueue.queuedAtOpen(c, earlier),
    },
  );
  // A device removed from the registry by another process (the CLI) loses its live session within registryCheckMs,
  // and its persistent one kept in aedes' store while it is offline.
  const registryWatch = new RegistryWatch({
    registry,
    sessions,
    clock: opts.clock,
    intervalMs: opts.registryCheckMs,
    logger,
    endSession: (connection) => {
      // Before closeFromServer, whose own reason ("error") would otherwise be the first and so the one kept.
      connection.markClosing("removed");
      closeFromServer(connection, "device removed from the registry");
    },
    kept: offlineQueue.kept,
    dropKept: (deviceId) => void offlineQueue.clearSession(deviceId),
  });
  const uplink = createUplink({ host: opts.host, registry, hub, logger, limits, sender, clock: opts.clock });
  const streamFacts = new WeakMap<object, StreamFacts>();
  const connectFacts = new WeakMap<Client, ConnectFacts>();
  const connections = new WeakMap<Client, DeviceConnection>();
  let listeners: SocketListener[] = [];
  let websocket: WebSocketEndpoint | undefined;
  let state: "new" | "starting" | "running" | "closing" | "closed" = "new";
  /** Settles when a `start` in progress has bound what it could; `close` waits for it. */
  let binding: Promise<void> | undefined;

  // aedes' own timers (connectTimeout here, each client's keepalive) run on the wall clock, not on `opts.clock`: they are
  // aedes' business. Every timer and time read of ours goes through `opts.clock`, except the read pacer's refresh of
  // aedes' keepalive timer, which must keep to that timer's clock (read-pacer.ts).
  const aedes = new Aedes({
    // [MQTT-3.1.3-5] allows servers longer client ids; device ids are up to 64 characters (DESIGN section 3).
    maxClientsIdLength: 64,
    connectTimeout: opts.connectTimeoutMs,
    // A device may subscribe under devices/{id}/down/ only, so no deep topic trees are needed.
    maxTopicLevels: 16,
    // Packets a device sends behind its CONNECT, before the CONNACK ([MQTT-3.1.4] allows it: a device flushing its
    // offline buffer on reconnect), wait in aedes' queue until authentication ends. aedes' default of 42 cut such a
    // device before it was even accepted, however often it retried; the broker's own bound on pipelined messages is
    // maxInflightPerDevice, and the read pacer lets aedes take no more packets of any kind than that in this first
    // read, so the queue never overflows. Their bytes stay bounded by the socket's read buffer: aedes reads no more
    // meanwhile.
    queueLimit: limits.maxInflightPerDevice,
  });

  // aedes keeps a client's QoS 2 messages between PUBLISH and PUBREL in its persistence (in memory); the up path asks it
  // whether a retransmission was received already. Read at call time: aedes creates it in `listen()`.
  const persistence = (): AedesPersistence => (aedes as unknown as { persistence: AedesPersistence }).persistence;
  const holdsQos2 = (client: Client, messageId: number): Promise<boolean> =>
    persistence()
      .incomingGetPacket(client, { messageId })
      .then(
        () => true,
        () => false,
      );
  const forgetSubscriptions = (client: Client, topics: string[]): Promise<void> =>
    persistence().removeSubscriptions(client, topics);

  installHooks(aedes, {
    opts,
    registry,
    hub,
    sessions,
    sender,
    offlineQueue,
    uplink,
    rateLimits,
    deviceCodecs,
    streamFacts,
    connectFacts,
    connections,
    qos2InFlight: new Qos2InFlight(),
    connectGuard: new ConnectGuard(limits, opts.clock),
    accepting: () => state === "running",
    holdsQos2,
    forgetSubscriptions,
  });

  // A payload up to the limit, plus a topic of up to 64 KiB and the packet's own header bytes.
  const maxPacketBytes = limits.maxPayloadBytes + 65_536 + 16;
  const packetRefused = packetRefusals({ hub, logger, clock: opts.clock, streamFacts, connections, maxPacketBytes });
  const unknownKeepalive = keepaliveWarning(logger);
  const accept = (stream: Duplex, transport: BrokerTransportKind, remoteAddress: string, req?: IncomingMessage) => {
    if (state !== "running") {
      stream.destroy();
      return;
    }
    // The pacer first, so the size guard on top of it sees only the bytes aedes takes.
    const guarded = guardPacketSize(
      // The keepalive refresh of a held session on the wall clock: aedes' keepalive timer runs on it (read-pacer.ts).
      paceReads(stream, systemClock, limits.maxInflightPerDevice, unknownKeepalive),
      maxPacketBytes,
      packetRefused,
    );
    streamFacts.set(guarded, { transport, remoteAddress });
    aedes.handle(guarded, req);
  };

  const maxSockets = socketsPerListener(limits.maxConnections);
  /**
   * What every listener (TCP, TLS, WebSocket) does with a socket refused because it holds `maxSockets`: count it
   * under BRIDGE_ERR_SOCKET_LIMIT and warn, at most once per 10 s per listener with how many it refused since, so a
   * flood of sockets does not flood the log too.
   */
  const socketLimitRefusals = (transport: BrokerTransportKind, message: string): ((remoteAddress: string) => void) => {
    const warning = new ThrottledWarning(logger, opts.clock, message);
    return (remoteAddress) => {
      hub.limitBreach(BrokerErrorCode.socketLimit);
      warning.note({ transport, remoteAddress, max: maxSockets });
    };
  };
  const refusalDeps = { hub, logger, clock: opts.clock };
  if (opts.websocket) {
    websocket = createWebSocketEndpoint({
      path: opts.websocket.path,
      // One MQTT packet per WebSocket message.
      maxPayloadBytes: maxPacketBytes,
      accept,
      // The same bound as each TCP and TLS listener: the HTTP server it shares has none of its own.
      maxSockets,
      onFull: socketLimitRefusals("ws", "MQTT over WebSocket socket limit reached; upgrades refused with 503"),
      clock: opts.clock,
      trustedProxies: opts.websocket.trustedProxies,
      closeGraceMs: opts.websocket.closeGraceMs,
      // The stream is the one `accept` guarded (the guards patch it in place): counted and logged as their cuts are.
      onTextFrame: (stream) => packetRefused(stream, "text-frame", "WebSocket text frame"),
    });
  }

  /** Binds aedes and the socket listeners; `start` settles the outcome. */
  async function bindListeners(): Promise<void> {
    await aedes.listen();
    // Before the listeners open, so every session's resent frames carry DUP ([MQTT-3.3.1-1], redelivery-dup.ts).
    markRedeliveries(persistence());
    if (opts.tcp) {
      const onFull = socketLimitRefusals("tcp", "MQTT over TCP socket limit reached; sockets closed as they arrive");
      listeners.push(
        await listenSockets({
          kind: "tcp",
          host: opts.tcp.host,
          port: opts.tcp.port,
          accept,
          maxSockets,
          onFull,
          proxyProtocol: proxyGateOptions(refusalDeps, "tcp", opts.tcp.proxyProtocol),
        }),
      );
    }
    if (opts.tls) {
      const { cert, key, ca } = opts.tls;
      listeners.push(
        await listenSockets({
          kind: "tls",
          host: opts.tls.host,
          port: opts.tls.port,
          tls: ca === undefined ? { cert, key } : { cert, key, ca, requestCert: true, rejectUnauthorized: true },
          accept,
          maxSockets,
          onFull: socketLimitRefusals("tls", "MQTT over TLS socket limit reached; sockets closed as they arrive"),
          proxyProtocol: proxyGateOptions(refusalDeps, "tls", opts.tls.proxyProtocol),
        }),
      );
    }
  }

  /** A function, so the check after an await reads the state as it is then, not as narrowed before the await. */
  const isClosing = (): boolean => state === "closing" || state === "closed";

  function addresses(): BrokerAddresses {
    const out: BrokerAddresses = {};
    for (const l of listeners) out[l.kind as "tcp" | "tls"] = l.address();
    if (opts.websocket) out.websocket = { path: opts.websocket.path };
    return out;
  }

  return {
    registry,
    async start() {
      if (state !== "new") throw new BridgeError(BrokerErrorCode.closed, `broker cannot start: it is ${state}`);
      state = "starting";
      binding = bindListeners();
      try {
        await binding;
      } catch (err) {
        await Promise.all(listeners.map((l) => l.close()));
        listeners = [];
        await new Promise<void>((resolve) => aedes.close(() => resolve()));
        state = "closed";
        throw err;
      } finally {
        binding = undefined;
      }
      // close() was called while binding: it waited for this point and now closes what was bound.
      if (isClosing()) throw new BridgeError(BrokerErrorCode.closed, "broker was closed while starting");
      state = "running";
      registryWatch.start();
      if (opts.anonymous) {
        logger.warn(
          { anonymous: true },
          "ANONYMOUS MODE: devices absent from the registry may connect without credentials; do not use in production",
        );
      }
      logger.info({ addresses: addresses() }, "MQTT broker listening");
      return addresses();
    },
    addresses,
    handleUpgrade(req, socket, head) {
      if (!websocket) return false;
      return websocket.handleUpgrade(req, socket, head);
    },
    isOnline: (deviceId) => sessions.isOnline(deviceId),
    connectedDevices: () => sessions.onlineDevices(),
    endSessions(deviceId, reason) {
      let ended = 0;
      for (const connection of sessions.liveSessions()) {
        if (connection.deviceId !== deviceId || connection.closed) continue;
        connection.markClosing(reason);
        closeFromServer(connection, reason);
        ended++;
      }
      // Also when it has no session now: what aedes kept for its next one (subscriptions, queue, QoS 2 state, will)
      // must not reach a device given its id later.
      if (reason === "removed") void offlineQueue.clearSession(deviceId);
      if (ended > 0) logger.info({ device: deviceId, sessions: ended, reason }, "device sessions ended");
      return ended;
    },
    stats: () => structuredClone(hub.stats),
    async close() {
      if (state === "closing" || state === "closed") return;
      state = "closing";
      registryWatch.stop();
      // A start in progress would bind listeners (and aedes its timers) after this close; let it finish binding first,
      // then close everything it bound (start rejects).
      await binding?.catch(() => {});
      for (const connection of sessions.liveSessions()) connection.markClosing("shutdown");
      const listenersClosed = Promise.all(listeners.map((l) => l.close()));
      const websocketClosed = websocket?.close();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await Promise.all([listenersClosed, websocketClosed]);
      await sessions.drain();
      registry.flush();
      if (ownsRegistry) registry.close();
      state = "closed";
    },
  };
}

/** Creates and starts a broker in one step. */
export async function startBroker(options: BrokerOptions): Promise<Broker> {
  const broker = createBroker(options);
  await broker.start();
  return broker;
}
