/**
 * DeviceAgent metric aliases: the hello's alias table (`metrics`) is kept in the agent's SQLite, and positional
 * readings (`rv`) are stored by metric name, so queries see names. Without a table, `rv` is refused with
 * BRIDGE_ERR_TELEMETRY_ALIASES_UNKNOWN in the device's codec and nothing of the frame is stored.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import fc from "fast-check";
import type { TelemetryRow } from "../../agents/device/index.ts";
import { readingsFromFrame } from "../../agents/device/telemetry-readings.ts";
import { getCodec, type TelemetryFrame, type UpMessage, type Value } from "../../codecs/index.ts";
import { DeviceHarness } from "./device-harness.ts";

const harnesses: DeviceHarness[] = [];
after(async () => {
  for (const h of harnesses) await h.dispose();
});

function harness(options: ConstructorParameters<typeof DeviceHarness>[0] = {}): DeviceHarness {
  const h = new DeviceHarness(options);
  harnesses.push(h);
  return h;
}

const METRICS = ["temp", "hum", "co2", "rssi", "batt"];

/** A telemetry frame as the agent gets it from a pb device: encoded and decoded by the real codec. */
function viaPb(frame: TelemetryFrame): UpMessage {
  const pb = getCodec("pb");
  const decoded = pb.decodeUp("telemetry", pb.encodeUp("telemetry", frame));
  assert.ok(decoded.ok, decoded.ok ? "" : decoded.message);
  return { channel: "telemetry", frame: decoded.frame };
}

async function rows(h: DeviceHarness, id: string): Promise<TelemetryRow[]> {
  return h.call<TelemetryRow[]>(id, "queryTelemetry", { order: "asc", limit: 100 });
}

test("positional readings after a hello with metrics are stored by metric name, nulls left out", async () => {
  const h = harness();
  const now = h.clock.now();
  const dev = await h.open("node-a1", "pb");
  await h.send(dev, { channel: "hello", frame: { fw: "2.0", codec: "pb", metrics: METRICS } });
  await h.send(dev, viaPb({ ts: now - 1000, rv: [Math.fround(21.37), null, 612, -67] }));
  assert.deepEqual(await rows(h, "node-a1"), [
    { ts: now - 1000, metric: "temp", value: Math.fround(21.37) },
    { ts: now - 1000, metric: "co2", value: 612 },
    { ts: now - 1000, metric: "rssi", value: -67 },
  ]);
  const co2 = await h.call<TelemetryRow[]>("node-a1", "queryTelemetry", { metric: "co2" });
  assert.deepEqual(
    co2.map((r) => r.value),
    [612],
  );
  assert.deepEqual(dev.frames("error"), []);
});

test("rv before any hello with metrics is refused with BRIDGE_ERR_TELEMETRY_ALIASES_UNKNOWN and stores nothing", async () => {
  const h = harness();
  const dev = await h.open("node-a2", "pb");
  await h.send(dev, { channel: "hello", frame: { fw: "2.0" } });
  await h.send(dev, viaPb({ r: { door: true }, rv: [1, 2] }));
  const errors = dev.frames("error");
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, "BRIDGE_ERR_TELEMETRY_ALIASES_UNKNOWN");
  assert.match(errors[0].msg, /hello with metrics/);
  assert.deepEqual(await rows(h, "node-a2"), [], "the named reading of the refused frame is not stored either");

  // The firmware's answer to the error: declare the table, then send again.
  await h.send(dev, { channel: "hello", frame: { fw: "2.0", metrics: ["a", "b"] } });
  await h.send(dev, viaPb({ rv: [1, 2] }));
  assert.deepEqual(
    (await rows(h, "node-a2")).map((r) => [r.metric, r.value]),
    [
      ["a", 1],
      ["b", 2],
    ],
  );
});

test("the alias table survives a restart and serves a new session that sends rv without a hello", async () => {
  const h = harness();
  const first = await h.open("node-a3", "cbor");
  await h.send(first, { channel: "hello", frame: { fw: "2.0", metrics: METRICS } });
  await h.close(first);
  await h.restart();
  const second = await h.open("node-a3", "cbor");
  await h.send(second, { channel: "telemetry", frame: { rv: [20, 50] } });
  assert.deepEqual(second.frames("error"), []);
  assert.deepEqual(
    (await rows(h, "node-a3")).map((r) => [r.metric, r.value]),
    [
      ["temp", 20],
      ["hum", 50],
    ],
  );
});

test("the alias table survives hibernation of an idle agent", async () => {
  const h = harness({ idleTimeoutMs: 1000 });
  const dev = await h.open("node-a4", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "2.0", metrics: ["x"] } });
  const before = h.runtime.stats().active;
  await h.clock.advance(5000);
  assert.ok(h.runtime.stats().active < before, "the agent hibernated");
  await h.send(dev, { channel: "telemetry", frame: { rv: [7] } });
  assert.deepEqual(
    (await rows(h, "node-a4")).map((r) => [r.metric, r.value]),
    [["x", 7]],
  );
});

test("a hello without metrics keeps the table and a hello with metrics replaces it whole", async () => {
  const h = harness();
  const dev = await h.open("node-a5", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0", metrics: ["a", "b", "c"] } });
  await h.send(dev, { channel: "hello", frame: { fw: "1.0" } });
  await h.send(dev, { channel: "telemetry", frame: { rv: [1, 2, 3] } });
  await h.send(dev, { channel: "hello", frame: { fw: "1.1", metrics: ["c", "a"] } });
  await h.send(dev, { channel: "telemetry", frame: { rv: [30, 10] } });
  // The old table's third position is gone: a three-reading rv no longer fits.
  await h.send(dev, { channel: "telemetry", frame: { rv: [1, 2, 3] } });
  assert.deepEqual(
    (await rows(h, "node-a5")).map((r) => [r.metric, r.value]),
    [
      ["a", 1],
      ["b", 2],
      ["c", 3],
      ["c", 30],
      ["a", 10],
    ],
  );
  const errors = dev.frames("error");
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, "BRIDGE_ERR_TELEMETRY_ALIASES_UNKNOWN");
  assert.match(errors[0].msg, /3 readings but the alias table names 2/);
});

test("rv, r and SenML in one frame are all stored, and a map reading in rv is flattened like one in r", async () => {
  const h = harness();
  const now = h.clock.now();
  const dev = await h.open("node-a6", "json");
  await h.send(dev, { channel: "hello", frame: { fw: "1", metrics: ["env", "batt"] } });
  await h.send(dev, {
    channel: "telemetry",
    frame: { ts: now, rv: [{ t: 21, h: 40 }, 3.7], r: { door: false }, senml: [{ n: "lux", v: 300 }] },
  });
  const stored = (await rows(h, "node-a6")).map((r) => r.metric).sort();
  assert.deepEqual(stored, ["batt", "door", "env.h", "env.t", "lux"]);
});

test("positional readings count toward telemetryMaxReadingsPerFrame", async () => {
  const h = harness({ agentConfig: { DeviceAgent: { telemetryMaxReadingsPerFrame: 2 } } });
  const dev = await h.open("node-a7", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1", metrics: ["a", "b", "c"] } });
  await h.send(dev, { channel: "telemetry", frame: { rv: [1, 2, 3] } });
  await h.send(dev, { channel: "telemetry", frame: { rv: [1, null, 3] } });
  assert.deepEqual(
    dev.frames("error").map((f) => f.code),
    ["BRIDGE_ERR_TELEMETRY_TOO_MANY"],
  );
  assert.equal((await rows(h, "node-a7")).length, 2);
});

test("resolving rv through a table gives the readings the same frame keyed by name would give", () => {
  const policy = { now: 1_800_000_000_000, maxPastMs: 1000, maxFutureMs: 1000 };
  const reading = fc.oneof(fc.constant(null), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }));
  const case_ = fc
    .uniqueArray(
      fc.string({ minLength: 1, maxLength: 12 }).filter((n) => n !== "__proto__" && !n.includes(".")),
      {
        minLength: 1,
        maxLength: 10,
      },
    )
    .chain((table) => fc.tuple(fc.constant(table), fc.array(reading, { minLength: 1, maxLength: table.length })));
  fc.assert(
    fc.property(case_, ([table, rv]) => {
      const named: Record<string, Value> = {};
      rv.forEach((v, i) => {
        if (v !== null) named[table[i]] = v;
      });
      const byPosition = readingsFromFrame({ rv }, policy, 256, table);
      const byName = readingsFromFrame({ r: named }, policy, 256, null);
      assert.ok(byPosition.ok && byName.ok);
      assert.deepStrictEqual(byPosition.readings, byName.readings);
    }),
    { seed: 11, numRuns: 200 },
  );
});
