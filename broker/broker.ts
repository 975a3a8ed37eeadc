/**
 * The embedded MQTT broker: aedes with its hooks wired to device auth, the ACL, the up path and the device
 * sessions, plus the TCP, TLS and WebSocket listeners.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import path from "node:path";
import type { Duplex } from "node:stream";
import { Aedes, type AuthenticateError, type Client } from "aedes";
import type { CloseReason } from "../agents/host.ts";
import { negotiateCodec } from "../codecs/index.ts";
import { BridgeError } from "../errors/index.ts";
import { isUpTopic, mayPublish, maySubscribe } from "./acl.ts";
import { authenticateDevice } from "./auth.ts";
import { DeviceConnection } from "./connection.ts";
import { BrokerErrorCode } from "./errors.ts";
import { type BoundAddress, listenSockets, type SocketListener } from "./listeners/socket-listener.ts";
import { guardPacketSize } from "./listeners/packet-guard.ts";
import { createWebSocketEndpoint, type WebSocketEndpoint } from "./listeners/websocket.ts";
import { type BrokerStats, type BrokerTransportKind, ObserverHub } from "./observer.ts";
import { type BrokerOptions, resolveBrokerOptions } from "./options.ts";
import { createDeviceRegistry, type DeviceRegistry } from "./registry/index.ts";
import { SessionManager } from "./sessions.ts";
import { createConnectionTransport, createDownSender } from "./transport.ts";
import { createUplink } from "./uplink.ts";

/** Where the broker listens. A listener that is off is absent. */
export interface BrokerAddresses {
  tcp?: BoundAddress;
  tls?: BoundAddress;
  /** Path served through `handleUpgrade` on the app's HTTP server. */
  websocket?: { path: string };
}

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
  /** A copy of the broker's counters. */
  stats(): BrokerStats;
  /** Stops accepting, closes every session (reason "shutdown") and the listeners, flushes the registry. */
  close(): Promise<void>;
}

interface StreamFacts {
  transport: BrokerTransportKind;
  remoteAddress: string;
}

interface ConnectFacts {
  clientId: string;
  willTopic: string | undefined;
  clean: boolean;
}

function connackError(returnCode: 2 | 3 | 4 | 5, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
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
  const opts = resolveBrokerOptions(options);
  const ownsRegistry = !opts.registry;
  const registry = opts.registry ?? createDeviceRegistry({ path: path.join(opts.dataDir!, "registry.db") });
  const { logger, limits } = opts;
  const hub = new ObserverHub(opts.observer);
  const sender = createDownSender(hub, logger, opts.clock, opts.subscribeGraceMs);
  const sessions = new SessionManager(opts.host, hub, logger, (c) => sender.discard(c));
  const uplink = createUplink({ host: opts.host, registry, hub, logger, limits, sender });
  const streamFacts = new WeakMap<object, StreamFacts>();
  const connectFacts = new WeakMap<Client, ConnectFacts>();
  const connections = new WeakMap<Client, DeviceConnection>();
  let listeners: SocketListener[] = [];
  let websocket: WebSocketEndpoint | undefined;
  let state: "new" | "starting" | "running" | "closing" | "closed" = "new";

  const aedes = new Aedes({
    // [MQTT-3.1.3-5] allows servers longer client ids; device ids are up to 64 characters (DESIGN section 3).
    maxClientsIdLength: 64,
    connectTimeout: opts.connectTimeoutMs,
    // A device may subscribe under devices/{id}/down/ only, so no deep topic trees are needed.
    maxTopicLevels: 16,
  });

  function closeFromServer(connection: DeviceConnection, reason: CloseReason): void {
    connection.markClosing(reason);
    connection.closed = true;
    connection.client.close();
  }

  aedes.preConnect = (client, packet, callback) => {
    if (state !== "running") return callback(new Error("broker is not accepting connections"), false);
    connectFacts.set(client, { clientId: packet.clientId, willTopic: packet.will?.topic, clean: packet.clean ?? true });
    callback(null, true);
  };

  aedes.authenticate = (client, username, password, callback) => {
    const facts = connectFacts.get(client);
    const stream = streamFacts.get(client.conn) ?? { transport: "tcp", remoteAddress: "" };
    if (!facts || state !== "running") return callback(connackError(3, "broker is not accepting connections"), false);
    void (async () => {
      const decision = await authenticateDevice(
        { registry, anonymous: opts.anonymous },
        { clientId: facts.clientId, username, password, willTopic: facts.willTopic },
      );
      if (decision.status === "refused") {
        hub.authFailure(decision.reason);
        logger.warn(
          { device: facts.clientId.slice(0, 64), code: decision.code, remoteAddress: stream.remoteAddress },
          `device refused: ${decision.message}`,
        );
        return callback(connackError(decision.returnCode, decision.message), false);
      }
      const deviceId = facts.clientId;
      if (sessions.countExcept(deviceId) >= limits.maxConnections) {
        hub.limitBreach(BrokerErrorCode.connectionLimit);
        logger.warn({ device: deviceId, max: limits.maxConnections }, "connection limit reached");
        return callback(connackError(3, "connection limit reached"), false);
      }
      // aedes drops a client that went away during the (async) checks without calling back; so do we.
      if (client.closed || (client.conn as Duplex).destroyed) return;
      const negotiated = negotiateCodec({
        registryCodec: decision.device?.codec ?? undefined,
        defaultCodec: opts.defaultCodec,
      });
      const connection = new DeviceConnection(
        {
          connectionId: randomUUID(),
          deviceId,
          transport: stream.transport,
          remoteAddress: stream.remoteAddress,
          codec: negotiated.codec,
          codecSource: negotiated.source,
          client,
          clean: facts.clean,
          firmware: decision.device?.firmware ?? undefined,
          registered: decision.device !== undefined,
        },
        limits,
        opts.clock,
      );
      connections.set(client, connection);
      client.conn.once("close", () => void sessions.finish(connection));
      const transport = createConnectionTransport(connection, sender, (c, reason) =>
        closeFromServer(c, reason === "shutdown" ? "shutdown" : "error"),
      );
      const result = await sessions.open(connection, transport);
      if (result.status !== "committed") {
        hub.limitBreach(BrokerErrorCode.openFailed);
        logger.warn({ device: deviceId, code: result.code }, "agent refused the connection");
        return callback(connackError(3, "agent unavailable"), false);
      }
      if (decision.device) registry.touch(deviceId);
      callback(null, true);
    })().catch((err: unknown) => {
      logger.error({ err, device: facts.clientId.slice(0, 64) }, "authentication failed with a fault");
      callback(connackError(3, "server unavailable"), false);
    });
  };

  aedes.authorizePublish = (client, packet, callback) => {
    const connection = client ? connections.get(client) : undefined;
    if (!client || !connection) return callback(new Error("publish without a device session"));
    if (client.closed) {
      // aedes publishes the last will only after the session is gone: the agent learns it as close("will"),
      // and the will itself is not relayed (nobody may subscribe to up topics).
      connection.markClosing("will");
      return callback(new Error("last will consumed by the bridge"));
    }
    if (connection.closed || !connection.opened) return callback(new Error("session closed"));
    if (!mayPublish(connection.deviceId, packet.topic)) {
      hub.aclDenied("publish");
      logger.warn({ device: connection.deviceId, topic: packet.topic.slice(0, 256) }, "publish outside namespace");
      connection.markClosing("error");
      return callback(new BridgeError(BrokerErrorCode.aclDenied, "publish outside the device namespace"));
    }
    if (connection.inflight >= limits.maxInflightPerDevice) {
      hub.limitBreach(BrokerErrorCode.inflightLimit);
      logger.warn({ device: connection.deviceId, max: limits.maxInflightPerDevice }, "too many messages in flight");
      connection.markClosing("error");
      return callback(new BridgeError(BrokerErrorCode.inflightLimit, "too many messages in flight"));
    }
    // Up messages are consumed here; retaining them would keep device payloads in broker memory for nobody.
    packet.retain = false;
    const payload = typeof packet.payload === "string" ? Buffer.from(packet.payload) : packet.payload;
    connection.inflight++;
    uplink.handle(connection, packet.topic, payload).then(
      (outcome) => {
        connection.inflight--;
        if (outcome.status === "ack") return callback(null);
        connection.markClosing("error");
        callback(new BridgeError(outcome.code, outcome.message));
      },
      (err: unknown) => {
        connection.inflight--;
        logger.error({ err, device: connection.deviceId }, "up message failed with a fault");
        connection.markClosing("error");
        callback(err instanceof Error ? err : new Error("up message fault"));
      },
    );
  };

  aedes.authorizeSubscribe = (client, subscription, callback) => {
    const connection = connections.get(client);
    if (!connection || connection.closed || !maySubscribe(connection.deviceId, subscription.topic)) {
      hub.aclDenied("subscribe");
      logger.warn(
        { device: client.id, topic: String(subscription.topic).slice(0, 256) },
        "subscribe outside namespace",
      );
      // A null subscription is answered with SUBACK return code 0x80 (failure); the session stays up.
      return callback(null, null);
    }
    const qos: 0 | 1 = subscription.qos >= 1 ? 1 : 0;
    connection.subscriptions.set(subscription.topic, qos);
    callback(null, { ...subscription, qos });
  };

  // Defence in depth: whatever gets published, a session only ever receives its own device's down topics.
  aedes.authorizeForward = (client, packet) => {
    if (isUpTopic(packet.topic)) return null;
    return packet.topic.startsWith(`devices/${client.id}/down/`) ? packet : null;
  };

  // After the CONNACK and a persistent session's offline queue: frames the agent sent while opening may leave now.
  aedes.on("clientReady", (client) => {
    const connection = connections.get(client);
    if (connection) sender.flush(connection);
  });
  // After the SUBACK: frames the agent sent before the device subscribed go out now.
  aedes.on("subscribe", (_subscriptions, client) => {
    const connection = connections.get(client);
    if (connection) sender.subscribed(connection);
  });
  aedes.on("unsubscribe", (topics, client) => {
    const connection = connections.get(client);
    for (const topic of topics) connection?.subscriptions.delete(topic);
  });
  aedes.on("clientError", (client, err) => {
    connections.get(client)?.markClosing("error", { tentative: true });
    logger.info({ device: client.id, err: err.message }, "device session error");
  });
  aedes.on("keepaliveTimeout", (client) => {
    connections.get(client)?.markClosing("error", { tentative: true });
    logger.info({ device: client.id }, "device keepalive timeout");
  });
  aedes.on("connectionError", (_client, err) => {
    logger.info({ err: err.message }, "connection error before CONNECT completed");
  });

  // A payload up to the limit, plus a topic of up to 64 KiB and the packet's own header bytes.
  const maxPacketBytes = limits.maxPayloadBytes + 65_536 + 16;
  const accept = (stream: Duplex, transport: BrokerTransportKind, remoteAddress: string, req?: IncomingMessage) => {
    if (state !== "running") {
      stream.destroy();
      return;
    }
    const guarded = guardPacketSize(stream, maxPacketBytes, () => {
      hub.limitBreach(BrokerErrorCode.packetTooLarge);
      logger.warn({ remoteAddress, max: maxPacketBytes }, "MQTT packet too large; connection cut");
    });
    streamFacts.set(guarded, { transport, remoteAddress });
    aedes.handle(guarded, req);
  };

  if (opts.websocket) {
    websocket = createWebSocketEndpoint({
      path: opts.websocket.path,
      // One MQTT packet per WebSocket message: the payload limit plus room for the topic and header.
      maxPayloadBytes: limits.maxPayloadBytes + 65_536 + 16,
      accept,
    });
  }

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
      try {
        await aedes.listen();
        if (opts.tcp) listeners.push(await listenSockets({ kind: "tcp", ...opts.tcp, accept }));
        if (opts.tls) {
          const { cert, key, ca } = opts.tls;
          listeners.push(
            await listenSockets({
              kind: "tls",
              host: opts.tls.host,
              port: opts.tls.port,
              tls: { cert, key, ca },
              accept,
            }),
          );
        }
      } catch (err) {
        await Promise.all(listeners.map((l) => l.close()));
        listeners = [];
        await new Promise<void>((resolve) => aedes.close(() => resolve()));
        state = "closed";
        throw err;
      }
      state = "running";
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
    stats: () => structuredClone(hub.stats),
    async close() {
      if (state === "closing" || state === "closed") return;
      state = "closing";
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
