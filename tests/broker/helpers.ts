/**
 * Shared fixtures of the broker tests: a recording AgentHost with controllable commits and mailbox, a broker on
 * 127.0.0.1 port 0 with a temp registry, and promise helpers around mqtt.js. The manual clock is the shared one in
 * tests/support/manual-clock.ts.
 */
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import net, { type AddressInfo } from "node:net";
import path from "node:path";
import type { Duplex } from "node:stream";
import mqttPacket from "mqtt-packet";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import type {
  AgentHost,
  CloseReason,
  ConnectionInit,
  ConnectionTransport,
  DeliverOutcome,
  EventResult,
  InboundMessage,
} from "../../agents/host.ts";
import {
  type Broker,
  type BrokerLogger,
  type BrokerOptions,
  createBroker,
  createDeviceRegistry,
  type DeviceRegistry,
} from "../../broker/index.ts";

export type HostEvent =
  | { type: "open"; agentId: string; connectionId: string; init: ConnectionInit }
  | { type: "deliver"; agentId: string; connectionId: string; message: InboundMessage }
  | { type: "close"; agentId: string; connectionId: string; reason: CloseReason };

/** An AgentHost that records every call. Commits can be held, and the mailbox can be made to report full. */
export class RecordingHost implements AgentHost {
  readonly events: HostEvent[] = [];
  readonly transports = new Map<string, ConnectionTransport>();
  /** When true, `done` of new deliveries stays pending until `release()`. */
  hold = false;
  private held: Array<() => void> = [];
  /** When true, deliver answers mailbox-full until `setMailboxFull(false)`. */
  private full = false;
  private readyWaiters: Array<() => void> = [];
  fullRefusals = 0;
  openResult: EventResult = { status: "committed" };
  /** Runs inside `open`, as an agent's onConnect would (e.g. to send frames while the CONNECT is in progress). */
  onOpen: ((init: ConnectionInit) => void) | undefined;
  deliverResult: EventResult = { status: "committed" };
  open(agentId: string, init: ConnectionInit): Promise<EventResult> {
    this.events.push({ type: "open", agentId, connectionId: init.id, init });
    this.transports.set(init.id, init.transport);
    this.onOpen?.(init);
    return Promise.resolve(this.openResult);
  }

  deliver(agentId: string, connectionId: string, message: InboundMessage): DeliverOutcome {
    if (this.full) {
      this.fullRefusals++;
      return {
        accepted: false,
        reason: "mailbox-full",
        ready: new Promise<void>((resolve) => this.readyWaiters.push(resolve)),
      };
    }
    this.events.push({ type: "deliver", agentId, connectionId, message });
    const result = this.deliverResult;
    if (!this.hold) return { accepted: true, done: Promise.resolve(result) };
    return { accepted: true, done: new Promise<EventResult>((resolve) => this.held.push(() => resolve(result))) };
  }

  close(agentId: string, connectionId: string, reason: CloseReason): Promise<EventResult> {
    this.events.push({ type: "close", agentId, connectionId, reason });
    return Promise.resolve({ status: "committed" });
  }

  /** Commits every held delivery. */
  release(): void {
    this.hold = false;
    for (const r of this.held.splice(0)) r();
  }

  setMailboxFull(full: boolean): void {
    this.full = full;
    if (!full) for (const r of this.readyWaiters.splice(0)) r();
  }

  deliveries(agentId?: string): Array<Extract<HostEvent, { type: "deliver" }>> {
    return this.events.filter(
      (e): e is Extract<HostEvent, { type: "deliver" }> =>
        e.type === "deliver" && (agentId === undefined || e.agentId === agentId),
    );
  }

  opens(agentId?: string): Array<Extract<HostEvent, { type: "open" }>> {
    return this.events.filter(
      (e): e is Extract<HostEvent, { type: "open" }> =>
        e.type === "open" && (agentId === undefined || e.agentId === agentId),
    );
  }

  closes(agentId?: string): Array<Extract<HostEvent, { type: "close" }>> {
    return this.events.filter(
      (e): e is Extract<HostEvent, { type: "close" }> =>
        e.type === "close" && (agentId === undefined || e.agentId === agentId),
    );
  }

  /** The transport of the latest connection of `agentId`. */
  transportOf(agentId: string): ConnectionTransport {
    const open = this.opens(agentId).at(-1);
    if (!open) throw new Error(`no connection opened for ${agentId}`);
    return open.init.transport;
  }

  /** Resolves once `predicate` holds; rejects after `timeoutMs`. */
  waitFor(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
    return waitUntil(predicate, timeoutMs);
  }
}

/** Polls `predicate` every 5 ms until it holds; rejects after `timeoutMs`. */
export function waitUntil(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const check = (): void => {
      if (predicate()) {
        resolve();
      } else if (Date.now() - started > timeoutMs) {
        reject(new Error("condition not reached in time"));
      } else {
        setTimeout(check, 5);
      }
    };
    check();
  });
}

/** A logger that keeps every line, to assert on warnings. */
export class MemoryLogger implements BrokerLogger {
  readonly lines: Array<{ level: string; msg: string; obj: Record<string, unknown> }> = [];
  info(obj: Record<string, unknown>, msg: string): void {
    this.lines.push({ level: "info", msg, obj });
  }
  warn(obj: Record<string, unknown>, msg: string): void {
    this.lines.push({ level: "warn", msg, obj });
  }
  error(obj: Record<string, unknown>, msg: string): void {
    this.lines.push({ level: "error", msg, obj });
  }
}

/** The facts of each `warn` line of the test broker's log with message `msg`, in order. */
export function warned(tb: { logger: MemoryLogger }, msg: string): Array<Record<string, unknown>> {
  return tb.logger.lines.filter((l) => l.level === "warn" && l.msg === msg).map((l) => l.obj);
}

/** `H`: the host the broker serves, the one passed to `startTestBroker`, else a RecordingHost. */
export interface TestBroker<H extends AgentHost = RecordingHost> {
  broker: Broker;
  /** The host the broker serves: the one passed in, so a test asserts on the object that saw the calls. */
  host: H;
  registry: DeviceRegistry;
  logger: MemoryLogger;
  port: number;
  url: string;
  dir: string;
  /** Provisions a device and returns its secret. */
  addDevice(id: string, codec?: "json" | "cbor" | "pb"): Promise<string>;
  close(): Promise<void>;
}

type TestBrokerOverrides = Partial<Omit<BrokerOptions, "host">>;

/**
 * Starts a broker on 127.0.0.1:0 with a temp registry (cheap scrypt), serving `host` when one is given, else a new
 * RecordingHost; `tb.host` is the host served, typed as passed (a plain AgentHost has no `closes()` to assert on).
 */
export function startTestBroker(overrides?: TestBrokerOverrides & { host?: undefined }): Promise<TestBroker>;
export function startTestBroker<H extends AgentHost>(
  overrides: TestBrokerOverrides & { host: H },
): Promise<TestBroker<H>>;
export async function startTestBroker(
  overrides: TestBrokerOverrides & { host?: AgentHost } = {},
): Promise<TestBroker<AgentHost>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "broker-test-"));
  const registry = createDeviceRegistry({ path: path.join(dir, "registry.db"), scrypt: { N: 1024, r: 8, p: 1 } });
  const host = overrides.host ?? new RecordingHost();
  const logger = new MemoryLogger();
  let broker: Broker;
  let addresses: Awaited<ReturnType<Broker["start"]>>;
  try {
    broker = createBroker({ registry, logger, tcp: { host: "127.0.0.1", port: 0 }, ...overrides, host });
    addresses = await broker.start();
  } catch (err) {
    registry.close();
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const port = addresses.tcp?.port ?? 0;
  return {
    broker,
    host,
    registry,
    logger,
    port,
    url: `mqtt://127.0.0.1:${port}`,
    dir,
    async addDevice(id, codec) {
      const added = await registry.add(id, codec ? { codec } : {});
      if (added.status !== "created") throw new Error(`could not add ${id}: ${added.status}`);
      return added.secret;
    },
    async close() {
      await broker.close();
      registry.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Connects an mqtt.js client; resolves on CONNACK 0, rejects with the client's error (err.code = return code). */
export function connectDevice(url: string, options: IClientOptions): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, protocolVersion: 4, ...options });
    client.once("connect", () => resolve(client));
    client.once("error", (err) => {
      client.end(true);
      reject(err);
    });
  });
}

/** The CONNACK return code a connection attempt gets (0 when accepted; the client is closed either way). */
export async function connackCode(url: string, options: IClientOptions): Promise<number> {
  try {
    const client = await connectDevice(url, options);
    await endClient(client);
    return 0;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === "number") return code;
    throw err;
  }
}

/**
 * What a CONNECT got, keeping the client when accepted: a CONNACK code (0: accepted, with its client; the others close
 * it), or `closed` for a socket closed without any CONNACK. For tests that go on with the accepted session or must tell
 * a refusal from a cut; `connackCode` when only the code matters.
 */
export function connectAttempt(
  url: string,
  options: IClientOptions,
): Promise<{ code: number | "closed"; client?: MqttClient }> {
  return new Promise((resolve) => {
    const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, protocolVersion: 4, ...options });
    client.once("connect", () => resolve({ code: 0, client }));
    client.once("error", (err) => {
      client.end(true);
      resolve({ code: typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : -1 });
    });
    client.once("close", () => resolve({ code: "closed" }));
  });
}

export function endClient(client: MqttClient, force = false): Promise<void> {
  return new Promise((resolve) => client.end(force, {}, () => resolve()));
}

export function publish(
  client: MqttClient,
  topic: string,
  payload: Uint8Array | string,
  qos: 0 | 1 = 1,
): Promise<void> {
  return new Promise((resolve, reject) =>
    client.publish(topic, Buffer.from(payload), { qos }, (err) => (err ? reject(err) : resolve())),
  );
}

/** Subscribes; resolves with the granted QoS list from the SUBACK (128 = refused). */
export function subscribe(client: MqttClient, topic: string, qos: 0 | 1 = 1): Promise<number[]> {
  return new Promise((resolve, reject) =>
    client.subscribe(topic, { qos }, (err, granted) => {
      // mqtt.js reports a 0x80 SUBACK as an error that carries the packet.
      const refused = (err as { packet?: { granted?: number[] } } | null)?.packet?.granted;
      if (refused) return resolve(refused);
      if (err) return reject(err);
      resolve((granted ?? []).map((g) => g.qos));
    }),
  );
}

/** Resolves once the client's connection closed. */
export function closed(client: MqttClient): Promise<void> {
  return new Promise((resolve) => {
    if (!client.connected && client.disconnected) return resolve();
    client.once("close", () => resolve());
  });
}

/** An mqtt.js device with the PUBLISH packets it received, in order. */
export interface RecordingDevice {
  client: MqttClient;
  publishes: mqttPacket.IPublishPacket[];
}

/**
 * Connects an mqtt.js device, with a persistent session unless `options.clean`, recording every PUBLISH it receives
 * from its first packet on (a resumed session's frames come right after the CONNACK). With `withhold` it acknowledges
 * no QoS 1 frame: mqtt.js writes the PUBACK once `handleMessage` calls back, and handles the next packet only then.
 */
export async function connectRecording(
  url: string,
  options: IClientOptions,
  withhold: boolean,
): Promise<RecordingDevice> {
  const client = mqtt.connect(url, { clean: false, ...options, reconnectPeriod: 0, protocolVersion: 4 });
  client.handleMessage = (packet, callback) => {
    if (!withhold || packet.qos === 0) callback();
  };
  const publishes: mqttPacket.IPublishPacket[] = [];
  client.on("packetreceive", (packet: mqttPacket.Packet) => {
    if (packet.cmd === "publish") publishes.push(packet);
  });
  await new Promise<void>((resolve, reject) => {
    client.once("connect", () => resolve());
    client.once("error", reject);
  });
  return { client, publishes };
}

/** Collects messages the client receives, with the QoS and DUP flag of the PUBLISH that carried each. */
export function collect(client: MqttClient): Array<{ topic: string; payload: Buffer; qos: number; dup: boolean }> {
  const out: Array<{ topic: string; payload: Buffer; qos: number; dup: boolean }> = [];
  client.on("message", (topic, payload, packet) => out.push({ topic, payload, qos: packet.qos, dup: packet.dup }));
  return out;
}

/** A device speaking raw MQTT over a socket, for what mqtt.js will not do (bursts in one write, vanishing). */
export interface RawDevice {
  socket: net.Socket;
  /** Every packet received, in order. */
  packets: mqttPacket.Packet[];
  /** Writes all packets in one socket write, so the broker reads them in one chunk. */
  burst(packets: mqttPacket.Packet[]): void;
  /** Resolves when the socket closed. */
  closed: Promise<void>;
}

/**
 * Connects a raw device and waits for its CONNACK (any return code). `localAddress` picks the source address (another
 * loopback address such as 127.0.0.2 stands for a second machine).
 */
export async function connectRaw(
  port: number,
  connect: Partial<mqttPacket.IConnectPacket>,
  options: { localAddress?: string } = {},
): Promise<RawDevice> {
  const socket = net.connect({ port, host: "127.0.0.1", localAddress: options.localAddress });
  socket.on("error", () => {});
  const closedPromise = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  await new Promise((resolve) => socket.once("connect", resolve));
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const packets: mqttPacket.Packet[] = [];
  parser.on("packet", (p) => packets.push(p));
  socket.on("data", (d) => parser.parse(d));
  const device: RawDevice = {
    socket,
    packets,
    burst: (list) => socket.write(Buffer.concat(list.map((p) => mqttPacket.generate(p)))),
    closed: closedPromise,
  };
  device.burst([
    { cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clean: true, keepalive: 30, clientId: "", ...connect },
  ]);
  await waitUntil(() => packets.some((p) => p.cmd === "connack"));
  return device;
}

/** A raw TCP connection (from `localAddress`, if given) that writes `bytes` and waits for the broker to close it. */
export async function cutAfter(port: number, bytes: Buffer, localAddress?: string): Promise<void> {
  const socket = net.connect({ port, host: "127.0.0.1", localAddress });
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.write(bytes);
  await closed;
}

/** A CONNECT of a provisioned device (clean session, keepalive 30 s), with a last will on `willTopic` if given. */
export function connectPacket(clientId: string, password: string, willTopic?: string): Buffer {
  return mqttPacket.generate({
    cmd: "connect",
    protocolId: "MQTT",
    protocolVersion: 4,
    clean: true,
    keepalive: 30,
    clientId,
    username: clientId,
    password: Buffer.from(password),
    ...(willTopic === undefined ? {} : { will: { topic: willTopic, payload: Buffer.alloc(0), qos: 0, retain: false } }),
  });
}

/** A QoS 1 publish packet. */
export function publishPacket(topic: string, payload: Uint8Array, messageId: number): mqttPacket.IPublishPacket {
  return { cmd: "publish", topic, payload: Buffer.from(payload), qos: 1, messageId, dup: false, retain: false };
}

/**
 * An HTTP server on 127.0.0.1:0 handing its upgrades to `broker`, as the app's server does; `url` is its MQTT path.
 * `upgraded` holds the server's side of every upgraded connection, so a test can wait until the server saw one close.
 */
export async function serveUpgrades(
  broker: Broker,
): Promise<{ port: number; url: string; upgraded: Duplex[]; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  const upgraded: Duplex[] = [];
  server.on("upgrade", (req, socket, head) => {
    upgraded.push(socket);
    if (!broker.handleUpgrade(req, socket, head)) socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `ws://127.0.0.1:${port}/mqtt`,
    upgraded,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
