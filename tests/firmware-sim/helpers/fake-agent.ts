/**
 * A stand-in for the bridge's agents, for tests against a plain broker: an MQTT client subscribed to every device's up
 * topics that answers like a DeviceAgent would (desired-state deltas, commands, streamed reasoning) and stores the
 * telemetry it decodes, so the fleet's invariants can be checked end to end without any bridge code.
 */
import { type MqttClient, connectAsync } from "mqtt";
import {
  cborCodec,
  type CodecName,
  type DownChannel,
  type DownFrames,
  getCodec,
  isCodecName,
  jsonCodec,
  parseTopic,
} from "../../../codecs/index.ts";
import type { UpFrames, ValueMap } from "../../../codecs/frames.ts";

export interface FakeAgentOptions {
  /** Send commands encoded as JSON text whatever the device's codec (to provoke json-to-binary-device). */
  jsonToBinary?: boolean;
  /** Send commands in CBOR whatever the device's codec (to provoke undecodable-down-frame on pb devices). */
  cborToAll?: boolean;
  /** Forget every n-th telemetry message (to provoke telemetry-lost). 0: keep all. */
  loseEveryNth?: number;
  /** Stream reasoning answers as chunks even to devices that asked for stream:false. */
  ignoreStreamFlag?: boolean;
  /** The reported version the agent starts from, so a fresh device's first report is stale. Default 0. */
  initialReportedVersion?: number;
}

interface DeviceRecord {
  codec: CodecName;
  stream: boolean;
  helloCount: number;
  reportedVersion: number;
  reported: ValueMap;
  desired: ValueMap;
  acks: Map<string, number>;
  seqs: number[];
}

let agentCount = 0;

export class FakeAgent {
  readonly devices = new Map<string, DeviceRecord>();
  readonly errors: string[] = [];
  /** Last-will messages seen (published by the broker for devices that vanished without DISCONNECT). */
  wills = 0;
  /** Telemetry frames without a device timestamp. */
  withoutTs = 0;
  /** Device timestamp minus arrival time of every telemetry frame that had one, ms. */
  readonly tsOffsetsMs: number[] = [];
  #client: MqttClient | undefined;
  #telemetryCount = 0;
  readonly #options: FakeAgentOptions;

  constructor(options: FakeAgentOptions = {}) {
    this.#options = options;
  }

  async connect(url: string): Promise<void> {
    this.#client = await connectAsync(url, {
      clientId: `fake-agent-${process.pid}-${++agentCount}`,
      reconnectPeriod: 0,
    });
    await this.#client.subscribeAsync("devices/+/up/#", { qos: 1 });
    this.#client.on("message", (topic, payload) => {
      try {
        this.#onMessage(topic, payload);
      } catch (err) {
        this.errors.push(err instanceof Error ? err.message : String(err));
      }
    });
  }

  async close(): Promise<void> {
    await this.#client?.endAsync();
  }

  /** Telemetry seqs stored for a device (what a verifier reads back). */
  telemetry(deviceId: string): number[] {
    return this.devices.get(deviceId)?.seqs ?? [];
  }

  #send<C extends DownChannel>(deviceId: string, channel: C, frame: DownFrames[C], jsonAnyway = false): void {
    const record = this.devices.get(deviceId);
    if (!record) return;
    const forced = jsonAnyway ? jsonCodec : channel === "cmd" && this.#options.cborToAll ? cborCodec : undefined;
    const codec = forced ?? getCodec(record.codec);
    this.#client?.publish(`devices/${deviceId}/down/${channel}`, Buffer.from(codec.encodeDown(channel, frame)), {
      qos: 1,
    });
  }

  #onMessage(topic: string, payload: Buffer): void {
    if (topic.endsWith("/up/status")) this.wills++;
    const parsed = parseTopic(topic);
    if (!parsed.ok || parsed.topic.direction !== "up") return;
    const { deviceId, channel } = parsed.topic;
    let record = this.devices.get(deviceId);
    const codecName = parsed.topic.codec ?? record?.codec ?? "cbor";
    const decoded = getCodec(codecName).decodeUp(channel, payload);
    if (!decoded.ok) {
      this.errors.push(`${topic}: ${decoded.message}`);
      return;
    }
    if (channel === "hello") {
      const hello = decoded.frame as UpFrames["hello"];
      const codec = hello.codec && isCodecName(hello.codec) ? hello.codec : codecName;
      record ??= {
        codec,
        stream: true,
        helloCount: 0,
        reportedVersion: this.#options.initialReportedVersion ?? 0,
        reported: {},
        desired: {},
        acks: new Map(),
        seqs: [],
      };
      record.codec = codec;
      record.stream = hello.stream !== false;
      record.helloCount++;
      this.devices.set(deviceId, record);
      if (record.helloCount === 1) this.#greet(deviceId, hello.fw);
      return;
    }
    if (!record) return;
    switch (channel) {
      case "telemetry": {
        const frame = decoded.frame as UpFrames["telemetry"];
        this.#telemetryCount++;
        if (frame.ts === undefined) this.withoutTs++;
        else this.tsOffsetsMs.push(frame.ts - Date.now());
        const lose = this.#options.loseEveryNth && this.#telemetryCount % this.#options.loseEveryNth === 0;
        if (!lose && typeof frame.r?.seq === "number") record.seqs.push(frame.r.seq);
        return;
      }
      case "state": {
        const frame = decoded.frame as UpFrames["state"];
        if (frame.v !== record.reportedVersion) {
          this.#send(deviceId, "error", {
            code: "BRIDGE_ERR_STALE_VERSION",
            msg: "stale reported version",
            v: record.reportedVersion,
          });
          return;
        }
        record.reported = { ...record.reported, ...frame.s };
        record.reportedVersion++;
        return;
      }
      case "ack": {
        const frame = decoded.frame as UpFrames["ack"];
        record.acks.set(frame.id, (record.acks.get(frame.id) ?? 0) + 1);
        return;
      }
      case "reason": {
        const frame = decoded.frame as UpFrames["reason"];
        const stream = (frame.stream ?? record.stream) || this.#options.ignoreStreamFlag === true;
        if (stream) {
          for (const [seq, text] of ["It ", "looks ", "fine."].entries())
            this.#send(deviceId, "reason", { id: frame.id, seq, text });
          this.#send(deviceId, "reason", { id: frame.id, seq: 3, fin: true, fr: "stop", u: { p: 10, c: 3 } });
        } else {
          this.#send(deviceId, "reason", {
            id: frame.id,
            seq: 0,
            text: "It looks fine.",
            fin: true,
            fr: "stop",
            u: { p: 10, c: 3 },
          });
        }
        return;
      }
      default:
        return;
    }
  }

  #greet(deviceId: string, firmware: string): void {
    const jsonAnyway = this.#options.jsonToBinary === true;
    this.#send(deviceId, "cmd", { id: `${deviceId}-ping`, n: "ping" }, jsonAnyway);
    if (firmware.startsWith("sim-thermostat")) {
      const record = this.devices.get(deviceId)!;
      record.desired = { target: 23.5 };
      this.#send(deviceId, "state", { v: 1, d: { target: 23.5 } });
      const set = { id: `${deviceId}-set`, n: "set", a: { mode: "cool" } };
      record.desired = { ...record.desired, mode: "cool" };
      this.#send(deviceId, "cmd", set);
      // A redelivery of the same command: the device must not run it twice but must ack it.
      this.#send(deviceId, "cmd", set);
    }
  }
}
