/**
 * The same seed gives the same fleet: each device draws from its own streams, so what it draws (telemetry phase and
 * readings, reconnect jitter) does not depend on the order in which the devices happen to draw, which real timing
 * and the network decide.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createFleet, createManualClock, type ManualClock } from "../../firmware-sim/index.ts";
import { acknowledge, type ScriptedBroker, scriptedSocket } from "./helpers/scripted-socket.ts";

/** Lets the in-memory sockets exchange what is pending (each broker answer takes a macrotask turn or two). */
async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

interface DeviceTrace {
  /** Clock times of the device's CONNECTs. */
  connects: number[];
  /** Clock time at which the broker kicked it (right after its first hello). */
  kickedAt?: number;
  /** Telemetry payloads by seq. */
  readings: Map<number, string>;
}

/**
 * Runs three sensor devices with `seed` against a broker that holds the CONNACK of `heldId` until 300 ms and kicks
 * every device once, right after its first hello: which device draws its reconnect jitter first depends on `heldId`.
 */
async function tracedRun(clock: ManualClock, seed: number, heldId: string): Promise<Map<string, DeviceTrace>> {
  const traces = new Map<string, DeviceTrace>();
  const held: Array<() => void> = [];
  const fleet = createFleet({
    url: "mqtt://127.0.0.1:1",
    devices: 3,
    idPrefix: "dev-",
    rate: 10,
    codec: "json",
    // Without a device clock: a manual clock's fractional times are no valid `ts`.
    noClockRatio: 1,
    clock,
    seed,
    connectRatePerSec: 1000,
    backoff: { baseDelayMs: 1000, maxDelayMs: 1000 },
    keepaliveSec: 0,
    settleMs: 0,
    drainTimeoutMs: 0,
    socketFactory: () => {
      let trace: DeviceTrace | undefined;
      return scriptedSocket((packet, broker: ScriptedBroker) => {
        if (packet.cmd === "connect") {
          const id = packet.clientId;
          trace = traces.get(id) ?? { connects: [], readings: new Map() };
          traces.set(id, trace);
          trace.connects.push(clock.now());
          if (id === heldId && clock.now() < 300) {
            held.push(() => acknowledge(packet, broker));
            return;
          }
        }
        acknowledge(packet, broker);
        if (packet.cmd !== "publish" || trace === undefined) return;
        if (packet.topic.endsWith("/up/telemetry")) {
          const body = JSON.parse(packet.payload.toString()) as { r: { seq: number } };
          trace.readings.set(body.r.seq, packet.payload.toString());
        }
        if (packet.topic.includes("/hello/") && trace.kickedAt === undefined) {
          trace.kickedAt = clock.now();
          broker.close();
        }
      });
    },
  });
  void fleet.start();
  for (let t = 0; t < 3000; t += 10) {
    clock.advance(10);
    if (clock.now() >= 300) for (const release of held.splice(0)) release();
    await flush();
  }
  let stopped = false;
  const stopping = fleet.stop().then(() => {
    stopped = true;
  });
  while (!stopped) {
    clock.advance(50);
    await flush();
  }
  await stopping;
  return traces;
}

/** What a device drew, comparable across runs: its reconnect delay and the readings of its first 20 messages. */
function draws(trace: DeviceTrace | undefined) {
  assert.ok(trace !== undefined);
  assert.ok(trace.kickedAt !== undefined && trace.connects.length >= 2, `connects ${trace.connects.join(", ")}`);
  const seqs = [...trace.readings.keys()].sort((a, b) => a - b).slice(0, 20);
  assert.equal(seqs.length, 20, "20 telemetry messages arrived");
  return { reconnectDelayMs: trace.connects[1] - trace.kickedAt, readings: seqs.map((s) => trace.readings.get(s)) };
}

describe("seeded fleet", () => {
  test("two fleets from the same seed draw the same values per device whatever order the devices draw in", async () => {
    const first = await tracedRun(createManualClock(0), 42, "dev-1");
    const second = await tracedRun(createManualClock(0), 42, "dev-3");
    for (const id of ["dev-1", "dev-2", "dev-3"]) {
      assert.deepEqual(draws(second.get(id)), draws(first.get(id)), `device ${id}`);
    }
  });

  test("devices of one fleet draw different values, and another seed gives another fleet", async () => {
    const run = await tracedRun(createManualClock(0), 42, "dev-1");
    const other = await tracedRun(createManualClock(0), 43, "dev-1");
    assert.notDeepEqual(draws(run.get("dev-1")).readings, draws(run.get("dev-2")).readings);
    assert.notDeepEqual(draws(run.get("dev-1")), draws(other.get("dev-1")));
  });
});
