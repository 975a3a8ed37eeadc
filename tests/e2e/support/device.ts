/**
 * A real MQTT device for end-to-end tests (mqtt.js), speaking the wire protocol in one codec. Down frames are
 * decoded with the device's own codec; a `strict` device records a violation for any frame it could not parse,
 * and for any JSON text frame when its codec is binary (DESIGN section 3: never JSON to a binary device).
 */
import mqtt, { type MqttClient } from "mqtt";
import {
  type CodecName,
  type DownChannel,
  type DownFrames,
  formatUpTopic,
  getCodec,
  type UpChannel,
  type UpFrames,
} from "../../../codecs/index.ts";

export interface ReceivedFrame {
  channel: DownChannel;
  frame: unknown;
}

export interface TestDevice {
  readonly id: string;
  readonly client: MqttClient;
  readonly received: ReceivedFrame[];
  /** Problems a strict device saw (undecodable frames, JSON text to a binary device). */
  readonly violations: string[];
  /** Publishes an up frame in the device's codec (QoS 1: resolves on PUBACK). */
  send<C extends UpChannel>(
    channel: C,
    frame: UpFrames[C],
    options?: { qos?: 0 | 1; codecSuffix?: boolean },
  ): Promise<void>;
  /** Publishes raw bytes to an arbitrary topic. */
  publishRaw(topic: string, payload: Buffer | string, qos?: 0 | 1): Promise<void>;
  /** Resolves with the first received (or already received) frame on `channel` matching `predicate`. */
  waitFor<C extends DownChannel>(
    channel: C,
    predicate?: (frame: DownFrames[C]) => boolean,
    timeoutMs?: number,
  ): Promise<DownFrames[C]>;
  end(): Promise<void>;
}

export interface DeviceOptions {
  port: number;
  /** Broker URL instead of mqtt://127.0.0.1:{port} (e.g. ws://127.0.0.1:{httpPort}/mqtt). */
  url?: string;
  /** CA certificate to trust for mqtts:// URLs. */
  ca?: Buffer;
  id: string;
  secret?: string;
  codec: CodecName;
  /** Record violations for JSON text or undecodable frames. Default true. */
  strict?: boolean;
  /** MQTT clean session. Default true. */
  clean?: boolean;
  /** Subscribe to the down topics after connecting. Default true. */
  subscribe?: boolean;
}

function looksLikeJsonText(payload: Buffer): boolean {
  const text = payload.toString("utf8").trim();
  if (!text.startsWith("{") && !text.startsWith("[")) return false;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Connects a device; rejects on a refused CONNECT (bad credentials) with mqtt.js's error. */
export async function connectDevice(options: DeviceOptions): Promise<TestDevice> {
  const codec = getCodec(options.codec);
  const strict = options.strict ?? true;
  const client = mqtt.connect(options.url ?? `mqtt://127.0.0.1:${options.port}`, {
    clientId: options.id,
    username: options.secret === undefined ? undefined : options.id,
    password: options.secret,
    clean: options.clean ?? true,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    protocolVersion: 4,
    ...(options.ca === undefined ? {} : { ca: options.ca, rejectUnauthorized: true }),
  });
  const received: ReceivedFrame[] = [];
  const violations: string[] = [];
  const waiters = new Set<() => void>();
  client.on("message", (topic, payload) => {
    const channel = topic.split("/")[3] as DownChannel;
    if (codec.binary && looksLikeJsonText(payload)) violations.push(`JSON text on ${topic}: ${payload.toString()}`);
    const decoded = codec.decodeDown(channel, payload);
    if (!decoded.ok) {
      if (strict) violations.push(`undecodable ${options.codec} frame on ${topic}: ${decoded.code} ${decoded.message}`);
      return;
    }
    received.push({ channel, frame: decoded.frame });
    for (const wake of [...waiters]) wake();
  });
  await new Promise<void>((resolve, reject) => {
    client.once("connect", () => resolve());
    client.once("error", (err) => reject(err));
    client.once("close", () => reject(new Error(`connection of ${options.id} closed before CONNACK`)));
  });
  client.on("error", () => undefined);
  if (options.subscribe ?? true) await client.subscribeAsync(`devices/${options.id}/down/#`, { qos: 1 });

  return {
    id: options.id,
    client,
    received,
    violations,
    async send(channel, frame, sendOptions = {}) {
      const topic = formatUpTopic(options.id, channel, sendOptions.codecSuffix ? options.codec : undefined);
      await client.publishAsync(topic, Buffer.from(codec.encodeUp(channel, frame)), { qos: sendOptions.qos ?? 1 });
    },
    async publishRaw(topic, payload, qos = 1) {
      await client.publishAsync(topic, payload, { qos });
    },
    waitFor(channel, predicate = () => true, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const hit = received.find((r) => r.channel === channel && predicate(r.frame as DownFrames[typeof channel]));
          if (hit === undefined) return false;
          waiters.delete(wake);
          clearTimeout(timer);
          resolve(hit.frame as DownFrames[typeof channel]);
          return true;
        };
        const wake = () => void check();
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(new Error(`${options.id}: no ${channel} frame in ${timeoutMs} ms; got ${JSON.stringify(received)}`));
        }, timeoutMs);
        if (!check()) waiters.add(wake);
      });
    },
    async end() {
      await client.endAsync(true).catch(() => undefined);
    },
  };
}
