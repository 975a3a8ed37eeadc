/**
 * A lean MQTT 3.1.1 client connection: mqtt-packet over one raw socket, no timers of its own, no queues, no stores.
 * MQTT.js keeps per-client timers, stores and streams, which is what makes it heavy at ten thousand clients; here the
 * device (device/virtual-device.ts) owns retransmission, buffering and keepalive through the fleet's shared scheduler.
 */
import net from "node:net";
import tls from "node:tls";
import { type Duplex, PassThrough } from "node:stream";
import mqttPacket from "mqtt-packet";
import type { Packet } from "mqtt-packet";
import { SimErrorCode } from "../errors.ts";

/** Where and how to connect. */
export interface ConnectTarget {
  host: string;
  port: number;
  /** Use TLS (mqtts://). */
  tls: boolean;
  /** Extra TLS options (ca, rejectUnauthorized, servername...). */
  tlsOptions?: tls.ConnectionOptions;
  /** Source address to bind to (spreads connections over 127.0.0.x when one address runs out of ports). */
  localAddress?: string;
}

/** The MQTT CONNECT of a device. */
export interface ConnectPacketOptions {
  clientId: string;
  username?: string;
  password?: Buffer;
  clean: boolean;
  keepaliveSec: number;
  will?: { topic: string; payload: Buffer; qos: 0 | 1; retain: boolean };
}

/** Why a connection ended. */
export type CloseReason =
  /** We called `disconnect()` or `destroy()`. */
  | { kind: "local"; reason: string }
  /** The peer closed the socket (a takeover, a kick, a broker shutdown). */
  | { kind: "remote" }
  /** Socket or protocol error (refused, reset, unparsable packet). */
  | { kind: "error"; code: string; message: string };

/** Callbacks of one connection; the device implements them. */
export interface ConnectionEvents {
  onConnack(sessionPresent: boolean, returnCode: number): void;
  onPublish(topic: string, payload: Buffer, qos: 0 | 1 | 2, messageId: number | undefined, dup: boolean): void;
  onPuback(messageId: number): void;
  onSuback(messageId: number, granted: readonly number[]): void;
  onPingresp(): void;
  /** Called exactly once per connection. */
  onClose(reason: CloseReason): void;
  /**
   * One of the callbacks above threw (a bug of the device code). It is reported here instead of escaping into the
   * socket's event handler, where it would be an uncaught exception ending the process and every other device.
   * Default: the error is rethrown (an uncaught exception), for single-purpose clients that would rather crash.
   */
  onHandlerError?(err: unknown): void;
}

/** Opens the byte stream to the broker; injectable so tests can use in-memory pairs. */
export type SocketFactory = (target: ConnectTarget) => Duplex;

/** The default socket factory: TCP, or TLS for mqtts://. */
export const defaultSocketFactory: SocketFactory = (target) => {
  const base = { host: target.host, port: target.port, localAddress: target.localAddress };
  const socket = target.tls ? tls.connect({ ...base, ...target.tlsOptions }) : net.connect(base);
  socket.setNoDelay(true);
  return socket;
};

/** One live connection. All methods are safe to call after close (they do nothing). */
export class LeanConnection {
  readonly #socket: Duplex;
  readonly #events: ConnectionEvents;
  #closed = false;
  #localReason: string | undefined;

  constructor(target: ConnectTarget, connect: ConnectPacketOptions, events: ConnectionEvents, factory: SocketFactory) {
    this.#events = events;
    this.#socket = openSocket(factory, target, (code, message) => this.#fail(code, message));
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on("packet", (packet: Packet) => this.#onPacket(packet));
    parser.on("error", (err: unknown) => this.#fail(SimErrorCode.protocol, errorMessage(err)));
    this.#socket.on("data", (chunk: Buffer) => {
      if (!this.#closed) parser.parse(chunk);
    });
    this.#socket.on("error", (err: NodeJS.ErrnoException) => this.#fail(err.code ?? "ERR_SOCKET", err.message));
    this.#socket.on("close", () =>
      this.#finish(this.#localReason ? { kind: "local", reason: this.#localReason } : { kind: "remote" }),
    );
    this.#write({
      cmd: "connect",
      protocolId: "MQTT",
      protocolVersion: 4,
      clientId: connect.clientId,
      clean: connect.clean,
      keepalive: connect.keepaliveSec,
      username: connect.username,
      password: connect.password,
      will: connect.will,
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  publish(topic: string, payload: Uint8Array, qos: 0 | 1, messageId: number | undefined, dup: boolean): void {
    const buffer = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    this.#write({ cmd: "publish", topic, payload: buffer, qos, messageId, dup, retain: false });
  }

  puback(messageId: number): void {
    this.#write({ cmd: "puback", messageId });
  }

  subscribe(messageId: number, topics: readonly string[], qos: 0 | 1): void {
    this.#write({ cmd: "subscribe", messageId, subscriptions: topics.map((topic) => ({ topic, qos })) });
  }

  ping(): void {
    this.#write({ cmd: "pingreq" });
  }

  /** A clean goodbye: DISCONNECT, so the broker does not publish the last will [MQTT-3.14.4-3]. */
  disconnect(reason = "disconnect"): void {
    if (this.#closed) return;
    this.#write({ cmd: "disconnect" });
    this.#localReason = reason;
    this.#socket.end();
  }

  /** An abrupt drop (power loss, network gone): no DISCONNECT, so the broker publishes the last will. */
  destroy(reason = "destroy"): void {
    if (this.#closed) return;
    this.#localReason = reason;
    this.#socket.destroy();
  }

  #write(packet: Packet): void {
    if (this.#closed || this.#socket.destroyed) return;
    this.#socket.write(mqttPacket.generate(packet));
  }

  #onPacket(packet: Packet): void {
    if (this.#closed) return;
    try {
      this.#dispatch(packet);
    } catch (err) {
      this.#handlerFailed(err);
    }
  }

  #dispatch(packet: Packet): void {
    switch (packet.cmd) {
      case "connack":
        this.#events.onConnack(packet.sessionPresent, packet.returnCode ?? 0);
        return;
      case "publish":
        this.#events.onPublish(packet.topic, toBuffer(packet.payload), packet.qos, packet.messageId, packet.dup);
        return;
      case "puback":
        if (packet.messageId !== undefined) this.#events.onPuback(packet.messageId);
        return;
      case "suback":
        this.#events.onSuback(
          packet.messageId ?? 0,
          (packet.granted as unknown[]).filter((g): g is number => typeof g === "number"),
        );
        return;
      case "pingresp":
        this.#events.onPingresp();
        return;
      default:
        // QoS 2 flows and unsubscribe acks never happen: the device subscribes at QoS 1 and publishes at QoS 0/1.
        return;
    }
  }

  #handlerFailed(err: unknown): void {
    if (!this.#events.onHandlerError) throw err;
    this.#events.onHandlerError(err);
  }

  #fail(code: string, message: string): void {
    if (this.#closed) return;
    this.#socket.destroy();
    this.#finish({ kind: "error", code, message });
  }

  #finish(reason: CloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#events.onClose(reason);
    } catch (err) {
      this.#handlerFailed(err);
    }
  }
}

/**
 * Opens the socket of one attempt. A factory that throws (net.connect for an invalid local address, an injected
 * transport) fails the attempt as a socket error would, on a later turn, so the device sees its close, backs off
 * and retries: a throw out of the constructor left it in "connecting" for good, never counted as powered on.
 */
function openSocket(
  factory: SocketFactory,
  target: ConnectTarget,
  fail: (code: string, message: string) => void,
): Duplex {
  try {
    return factory(target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException | undefined)?.code ?? "ERR_SOCKET";
    queueMicrotask(() => fail(code, errorMessage(err)));
    // A stand-in that takes the CONNECT and is destroyed by `fail`.
    return new PassThrough();
  }
}

function toBuffer(payload: string | Buffer): Buffer {
  return typeof payload === "string" ? Buffer.from(payload) : payload;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
