/** DeviceAgent telemetry through the real runtime: storage, SenML, device time, retention, queries, bad frames. */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { DeviceAgent } from "../../agents/device/index.ts";
import type { Value } from "../../codecs/frames.ts";
import type { TelemetryRow } from "../../agents/device/index.ts";
import { DeviceHarness } from "./device-harness.ts";

const harnesses: DeviceHarness[] = [];
after(async () => {
  for (const h of harnesses) await h.dispose();
});

function harness(agentConfig?: Record<string, unknown>): DeviceHarness {
  const h = new DeviceHarness({ agentConfig: agentConfig ? { DeviceAgent: agentConfig } : undefined });
  harnesses.push(h);
  return h;
}

test("readings from r maps and SenML packs are stored and queryable by metric and time", async () => {
  const h = harness();
  const now = h.clock.now();
  const dev = await h.open("thermo-1");
  assert.deepEqual(
    await h.send(dev, { channel: "telemetry", frame: { ts: now - 5000, r: { temp: 21.5, door: false } } }),
    {
      status: "committed",
    },
  );
  await h.send(dev, {
    channel: "telemetry",
    frame: {
      senml: [
        { bn: "thermo-1/", bt: (now - 2000) / 1000, n: "temp", u: "Cel", v: 22 },
        { n: "hum", v: 40, t: 1 },
      ],
    },
  });
  await h.send(dev, { channel: "telemetry", frame: { ts: 1234, r: { temp: 23 } } });

  const temps = await h.call<TelemetryRow[]>("thermo-1", "queryTelemetry", { metric: "temp" });
  assert.deepEqual(temps, [
    { ts: now, metric: "temp", value: 23 },
    { ts: now - 5000, metric: "temp", value: 21.5 },
  ]);
  const senml = await h.call<TelemetryRow[]>("thermo-1", "queryTelemetry", {
    from: now - 3000,
    to: now - 1,
    order: "asc",
  });
  assert.deepEqual(senml, [
    { ts: now - 2000, metric: "thermo-1/temp", value: 22, unit: "Cel" },
    { ts: now - 1000, metric: "thermo-1/hum", value: 40 },
  ]);
  assert.equal(dev.sent.length, 0, "nothing is sent back for good telemetry");
});

test("retention keeps at most telemetryMaxRows rows and drops rows older than the age limit", async () => {
  const h = harness({ telemetryMaxRows: 10, telemetryRetentionEveryRows: 5, telemetryMaxAgeSeconds: 3600 });
  const dev = await h.open("meter-1");
  for (let i = 0; i < 23; i++) await h.send(dev, { channel: "telemetry", frame: { r: { n: i } } });
  const rows = await h.call<TelemetryRow[]>("meter-1", "queryTelemetry", { limit: 100, order: "asc" });
  // Retention ran at rows 5, 10, 15, 20 (keeping 10), then rows 21-23 arrived: 13 rows until the next run.
  assert.equal(rows.length, 13);
  assert.equal(rows[0].value, 10);
  assert.equal(rows.at(-1)?.value, 22);
  await h.clock.advance(2 * 3600 * 1000);
  assert.equal(await h.call<number>("meter-1", "enforceTelemetryRetention"), rows.length);
  assert.deepEqual(await h.call<TelemetryRow[]>("meter-1", "queryTelemetry", {}), []);
});

test("a malformed or oversized telemetry frame gets an error frame in the device codec and stores nothing", async () => {
  const h = harness({ telemetryMaxReadingsPerFrame: 2 });
  const dev = await h.open("bad-1", "pb");
  await h.send(dev, { channel: "telemetry", frame: { r: { a: 1, b: 2, c: 3 } } });
  await h.send(dev, { channel: "telemetry", frame: { r: 5 as never } });
  assert.deepEqual(
    dev.frames("error").map((f) => f.code),
    ["BRIDGE_ERR_TELEMETRY_TOO_MANY", "BRIDGE_ERR_FRAME_INVALID"],
  );
  assert.deepEqual(await h.call<TelemetryRow[]>("bad-1", "queryTelemetry", {}), []);
  const bad = await h.runtime.call("bad-1", "queryTelemetry", [{ limit: "many" }]);
  assert.equal(bad.ok, false);
  if (!bad.ok) assert.equal(bad.code, "BRIDGE_ERR_INVALID_ARGUMENT");
});

test("a failed event's new telemetry shape is not reused by later readings when a subclass's onError skips super", async () => {
  // The telemetry store keeps the next id and the shape of the last frame in memory; a failed event's rollback must
  // drop them even when a subclass overrides onError (a documented hook whose default only logs) without super.
  let failNext = false;
  class Quiet extends DeviceAgent {
    protected override onTelemetry(): void {
      if (failNext) {
        failNext = false;
        throw new Error("hook failed");
      }
    }
    override onError(): void {}
  }
  const h = new DeviceHarness({ agentClass: Quiet });
  harnesses.push(h);
  const now = h.clock.now();
  const dev = await h.open("quiet-1");
  failNext = true;
  assert.equal((await h.send(dev, { channel: "telemetry", frame: { r: { temp: 1 } } })).status, "failed");
  assert.equal((await h.send(dev, { channel: "telemetry", frame: { r: { temp: 2 } } })).status, "committed");
  assert.equal((await h.send(dev, { channel: "telemetry", frame: { r: { hum: 3 } } })).status, "committed");
  assert.deepEqual(await h.call<TelemetryRow[]>("quiet-1", "queryTelemetry", { order: "asc" }), [
    { ts: now, metric: "temp", value: 2 },
    { ts: now, metric: "hum", value: 3 },
  ]);
});

test("queryTelemetryPage goes on after its next, and refuses an after that is no reading's {ts, id}", async () => {
  const h = harness();
  const now = h.clock.now();
  const dev = await h.open("pager-1");
  await h.send(dev, { channel: "telemetry", frame: { ts: now - 1000, r: { a: 1, b: 2, c: 3 } } });
  type Page = { readings: TelemetryRow[]; next: { ts: number; id: number } | null };
  const first = await h.call<Page>("pager-1", "queryTelemetryPage", { order: "asc", limit: 2 });
  assert.deepEqual(
    first.readings.map((r) => r.value),
    [1, 2],
  );
  assert.ok(first.next !== null);
  assert.equal(first.next.ts, now - 1000);
  const rest = await h.call<Page>("pager-1", "queryTelemetryPage", { order: "asc", limit: 2, after: first.next });
  assert.deepEqual(
    rest.readings.map((r) => r.value),
    [3],
  );
  assert.equal(rest.next, null);
  const notCursors: Value[] = [5, { ts: 1 }, { ts: 1, id: 1.5 }];
  for (const after of notCursors) {
    const bad = await h.runtime.call("pager-1", "queryTelemetryPage", [{ after }]);
    assert.equal(bad.ok, false);
    if (!bad.ok) assert.equal(bad.code, "BRIDGE_ERR_INVALID_ARGUMENT");
  }
});
