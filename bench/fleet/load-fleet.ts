/**
 * The load generator's devices: one lean MQTT connection each (firmware-sim's mqtt-packet client over a raw socket,
 * no per-device timers), publishing QoS 1 CBOR telemetry at an offered rate that is open loop: messages fall due on
 * a schedule whatever the server does, and a device whose window of unacknowledged messages is full keeps the due
 * ones in a backlog, so an overloaded server shows up as a growing backlog and a falling acked rate, not as a slower
 * schedule.
 */
import { getCodec } from "../../codecs/index.ts";
import { defaultSocketFactory, LeanConnection } from "../../firmware-sim/mqtt/lean-connection.ts";
import { percentileOfSorted } from "../percentile.ts";
import type { ConnectCommand, ConnectReply, RunCommand, RunReply } from "./driver-protocol.ts";

const cbor = getCodec("cbor");

interface Device {
  id: string;
  topic: string;
  conn: LeanConnection | undefined;
  online: boolean;
  nextMessageId: number;
  /** messageId -> [sent at (performance.now()), seq]. */
  inflight: Map<number, [number, number]>;
  backlog: number;
  seq: number;
  ackedSeqs: number[] | undefined;
}

interface RunState {
  latencies: number[];
  windowOpen: boolean;
  ackedInWindow: number;
  acked: number;
  sent: number;
  disconnects: number;
  /** Messages in flight on connections that closed. */
  lostInflight: number;
}

export class LoadFleet {
  readonly #devices: Device[] = [];
  #run: RunState | undefined;

  get online(): number {
    return this.#devices.filter((d) => d.online).length;
  }

  async connect(cmd: ConnectCommand): Promise<ConnectReply> {
    const started = performance.now();
    let failed = 0;
    let pendingCount = 0;
    let firstError: string | undefined;
    const pending: Promise<void>[] = [];
    const intervalMs = 10;
    const perTick = Math.max(1, Math.round((cmd.connectRatePerSec * intervalMs) / 1000));
    for (let i = 0; i < cmd.count; i++) {
      if (i > 0 && i % perTick === 0) await sleep(intervalMs);
      while (pendingCount >= cmd.maxPendingConnects) await sleep(2);
      const index = cmd.startIndex + i;
      const id = `${cmd.idPrefix}${index}`;
      const device: Device = {
        id,
        topic: `devices/${id}/up/telemetry`,
        conn: undefined,
        online: false,
        nextMessageId: 1,
        inflight: new Map(),
        backlog: 0,
        seq: 0,
        ackedSeqs: undefined,
      };
      this.#devices.push(device);
      const localAddress = cmd.localAddresses?.[index % cmd.localAddresses.length];
      const secret = cmd.secrets?.[i];
      pendingCount++;
      pending.push(
        this.#open(device, cmd, localAddress, secret)
          .catch((err: unknown) => {
            failed++;
            firstError ??= err instanceof Error ? err.message : String(err);
          })
          .finally(() => {
            pendingCount--;
          }),
      );
    }
    await Promise.all(pending);
    return { op: "connect", connected: cmd.count - failed, failed, online: this.online, elapsedMs: performance.now() - started, firstError };
  }

  #open(device: Device, cmd: ConnectCommand, localAddress: string | undefined, secret: string | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        device.conn?.destroy("connect timeout");
        reject(new Error(`${device.id}: no CONNACK within ${cmd.timeoutMs} ms`));
      }, cmd.timeoutMs);
      const target = { host: cmd.host, port: cmd.port, tls: false, localAddress };
      const options = {
        clientId: device.id,
        username: secret === undefined ? undefined : device.id,
        password: secret === undefined ? undefined : Buffer.from(secret),
        clean: true,
        keepaliveSec: cmd.keepaliveSec,
      };
      device.conn = new LeanConnection(target, options, {
        onConnack: (_present, code) => {
          clearTimeout(timer);
          if (code === 0) {
            device.online = true;
            resolve();
          } else {
            device.conn?.destroy("refused");
            reject(new Error(`${device.id}: CONNACK return code ${code}`));
          }
        },
        onPublish: (_topic, _payload, qos, messageId) => {
          if (qos === 1 && messageId !== undefined) device.conn?.puback(messageId);
        },
        onPuback: (messageId) => this.#onPuback(device, messageId),
        onSuback: () => {},
        onPingresp: () => {},
        onClose: (reason) => {
          clearTimeout(timer);
          if (device.online && this.#run) {
            this.#run.disconnects++;
            this.#run.lostInflight += device.inflight.size;
          }
          device.online = false;
          device.inflight.clear();
          reject(new Error(`${device.id}: closed (${reason.kind === "error" ? reason.code : reason.kind})`));
        },
      }, defaultSocketFactory);
    });
  }

  #publish(device: Device): void {
    const conn = device.conn;
    if (!conn || !device.online) return;
    const messageId = device.nextMessageId;
    device.nextMessageId = messageId === 65535 ? 1 : messageId + 1;
    const seq = device.seq++;
    const payload = cbor.encodeUp("telemetry", { ts: Date.now(), r: { seq, temp: 21.5 + (seq % 10) / 10, hum: 40 } });
    device.inflight.set(messageId, [performance.now(), seq]);
    if (this.#run) this.#run.sent++;
    conn.publish(device.topic, payload, 1, messageId, false);
  }

  #onPuback(device: Device, messageId: number): void {
    const entry = device.inflight.get(messageId);
    if (!entry) return;
    device.inflight.delete(messageId);
    const run = this.#run;
    if (run) {
      run.latencies.push(performance.now() - entry[0]);
      run.acked++;
      if (run.windowOpen) run.ackedInWindow++;
      device.ackedSeqs?.push(entry[1]);
      if (run.windowOpen && device.backlog > 0) {
        device.backlog--;
        this.#publish(device);
      }
    }
  }

  async run(cmd: RunCommand): Promise<RunReply> {
    const devices = this.#devices.filter((d) => d.online);
    const run: RunState = { latencies: [], windowOpen: true, ackedInWindow: 0, acked: 0, sent: 0, disconnects: 0, lostInflight: 0 };
    this.#run = run;
    for (const d of this.#devices) {
      d.backlog = 0;
      d.ackedSeqs = cmd.recordSeqs ? [] : undefined;
    }
    let generated = 0;
    let next = 0;
    const started = performance.now();
    // One 1 ms timer for the whole fleet: every tick sends what fell due since the last one.
    while (devices.length > 0) {
      const elapsed = performance.now() - started;
      if (elapsed >= cmd.durationMs) break;
      const due = Math.floor((cmd.ratePerSec * elapsed) / 1000) - generated;
      for (let k = 0; k < due; k++) {
        const d = devices[next];
        next = (next + 1) % devices.length;
        generated++;
        if (!d?.online) continue;
        if (d.inflight.size < cmd.windowPerDevice) this.#publish(d);
        else d.backlog++;
      }
      await sleep(1);
    }
    const windowMs = performance.now() - started;
    run.windowOpen = false;
    const drainEnd = performance.now() + cmd.drainMs;
    while (performance.now() < drainEnd && this.#devices.some((d) => d.online && d.inflight.size > 0)) await sleep(5);
    this.#run = undefined;
    let unacked = 0;
    const ackedSeqs: Record<string, number[]> = {};
    for (const d of this.#devices) {
      unacked += d.inflight.size;
      d.inflight.clear();
      d.backlog = 0;
      if (d.ackedSeqs) ackedSeqs[d.id] = d.ackedSeqs;
      d.ackedSeqs = undefined;
    }
    unacked += run.lostInflight;
    const unsent = generated - run.sent;
    return {
      op: "run",
      offeredPerSec: (generated * 1000) / windowMs,
      generated,
      sent: run.sent,
      ackedInWindow: run.ackedInWindow,
      acked: run.acked,
      ackedPerSec: (run.ackedInWindow * 1000) / windowMs,
      unsent,
      unacked,
      disconnects: run.disconnects,
      latencyMs: summarize(run.latencies),
      ackedSeqs: cmd.recordSeqs ? ackedSeqs : undefined,
    };
  }

  /** DISCONNECT every device and wait (bounded) for the sockets to close. */
  async close(): Promise<void> {
    for (const d of this.#devices) d.conn?.disconnect("bench done");
    const end = performance.now() + 5000;
    while (performance.now() < end && this.#devices.some((d) => d.conn && !d.conn.closed)) await sleep(20);
    for (const d of this.#devices) d.conn?.destroy("bench done");
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function summarize(values: number[]): RunReply["latencyMs"] {
  if (values.length === 0) return { p50: Number.NaN, p90: Number.NaN, p99: Number.NaN, max: Number.NaN, mean: Number.NaN };
  const sorted = Float64Array.from(values).sort();
  const at = (p: number) => percentileOfSorted(sorted, p);
  let sum = 0;
  for (const v of sorted) sum += v;
  return { p50: at(50), p90: at(90), p99: at(99), max: sorted[sorted.length - 1] ?? Number.NaN, mean: sum / sorted.length };
}
