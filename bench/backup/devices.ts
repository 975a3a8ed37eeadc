/**
 * The live devices of the backup benchmark: real MQTT clients (mqtt.js, as a device library would be) over loopback,
 * each authenticated with its own secret, publishing QoS 1 CBOR telemetry at a steady rate. The schedule is open loop
 * (one shared timer sends what fell due, round-robin over the devices, whatever the bridge answers), so a stalled
 * bridge shows up as PUBACK latency, not as a slower schedule. Every PUBACK is kept with its send time on the wall
 * clock, so the benchmark can split the samples into its time windows afterwards.
 */
import mqtt, { type MqttClient } from "mqtt";
import { getCodec } from "../../codecs/index.ts";

const cbor = getCodec("cbor");

/** The schedule's timer period, ms: what fell due since the last tick is sent at once. */
const TICK_MS = 2;

export interface PubackSample {
  /** When it was published, wall clock (Date.now), to place it in a window. */
  sentAtMs: number;
  /** Publish -> PUBACK, ms (performance.now). */
  latencyMs: number;
}

interface LiveDevice {
  id: string;
  topic: string;
  client: MqttClient;
  seq: number;
}

export class LiveDevices {
  readonly samples: PubackSample[] = [];
  /** Publishes that failed (the client reported an error) or were never acknowledged by `stop`. */
  failed = 0;
  #inFlight = 0;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #devices: LiveDevice[];

  private constructor(devices: LiveDevice[]) {
    this.#devices = devices;
  }

  /** Connects every device (no automatic reconnect: a dropped session is a failure of the run). */
  static async connect(url: string, secrets: ReadonlyMap<string, string>): Promise<LiveDevices> {
    const devices: LiveDevice[] = [];
    try {
      for (const [id, secret] of secrets) {
        const client = await mqtt.connectAsync(url, {
          clientId: id,
          username: id,
          password: secret,
          reconnectPeriod: 0,
          connectTimeout: 10_000,
        });
        devices.push({ id, topic: `devices/${id}/up/telemetry`, client, seq: 0 });
      }
    } catch (err) {
      await Promise.all(devices.map((d) => d.client.endAsync(true)));
      throw err;
    }
    return new LiveDevices(devices);
  }

  /** Starts sending `ratePerDevice` messages per second from every device. */
  start(ratePerDevice: number): void {
    if (this.#timer !== undefined) return;
    const started = performance.now();
    const total = ratePerDevice * this.#devices.length;
    let generated = 0;
    this.#timer = setInterval(() => {
      const due = Math.floor((total * (performance.now() - started)) / 1000) - generated;
      for (let k = 0; k < due; k++) {
        this.#publish(this.#devices[generated % this.#devices.length]);
        generated++;
      }
    }, TICK_MS);
  }

  #publish(device: LiveDevice): void {
    const payload = cbor.encodeUp("telemetry", {
      ts: Date.now(),
      r: { seq: device.seq++, temp: 21.5, hum: 40 },
    });
    const sentAtMs = Date.now();
    const sentAt = performance.now();
    this.#inFlight++;
    device.client.publish(device.topic, Buffer.from(payload), { qos: 1 }, (err) => {
      // After `stop` a late answer is already counted as failed.
      if (this.#stopped) return;
      this.#inFlight--;
      if (err) this.failed++;
      else this.samples.push({ sentAtMs, latencyMs: performance.now() - sentAt });
    });
  }

  /** Stops sending and waits (at most `drainMs`) for the PUBACKs still due; those missing count as failed. */
  async stop(drainMs = 5000): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    const end = performance.now() + drainMs;
    while (this.#inFlight > 0 && performance.now() < end) await new Promise((r) => setTimeout(r, 10));
    this.#stopped = true;
    this.failed += this.#inFlight;
  }

  /** Disconnects every device. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all(this.#devices.map((d) => d.client.endAsync()));
  }
}
