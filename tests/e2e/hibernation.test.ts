import assert from "node:assert/strict";
import fs from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { after, describe, test } from "node:test";
import {
  addDevice,
  type BridgeProcess,
  makeTempDir,
  metricSum,
  scrapeMetrics,
  startBridgeProcess,
} from "./support/bridge-process.ts";
import { connectDevice, type TestDevice } from "./support/device.ts";

const dataDir = makeTempDir("bridge-hibernate-");
let bridge: BridgeProcess | undefined;
let dev: TestDevice | undefined;

after(async () => {
  await dev?.end();
  await bridge?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

/** Polls `read` until `accept` holds or about 10 s passed; returns the last value. */
async function eventually<T>(read: () => Promise<T>, accept: (value: T) => boolean): Promise<T> {
  let value = await read();
  for (let i = 0; i < 100 && !accept(value); i += 1) {
    await sleep(100);
    value = await read();
  }
  return value;
}

describe("hibernation end to end", () => {
  test("an idle device's agent leaves memory while the device stays connected, and wakes for its next message", async () => {
    const secret = addDevice(dataDir, "sleepy-1", "cbor");
    bridge = await startBridgeProcess({ dataDir, args: ["--idle-timeout-ms", "300"] });
    const b = bridge;
    dev = await connectDevice({ port: b.mqttPort, id: "sleepy-1", secret, codec: "cbor" });
    await dev.send("hello", { fw: "1.0.0", codec: "cbor" });
    await dev.send("telemetry", { r: { t: 20 } });

    const metrics = await eventually(
      () => scrapeMetrics(b),
      (text) => metricSum(text, "bridge_agents_hibernated") >= 1,
    );
    assert.ok(metricSum(metrics, "bridge_agents_hibernated") >= 1, "the agent hibernated");
    assert.equal(metricSum(metrics, "bridge_agents_active"), 0, "no agent left in memory");
    const devices = await b.api("GET", "/api/devices");
    const row = (devices.body as { devices?: Array<{ id: string; online: boolean }> }).devices?.find(
      (d) => d.id === "sleepy-1",
    );
    assert.equal(row?.online, true, "the device is still connected");

    await dev.send("rpc", { id: "wake", m: "ping", a: [] });
    const result = await dev.waitFor("rpc", (f) => f.id === "wake");
    assert.equal(result.ok, true);
    const rows = await b.api("GET", "/api/devices/sleepy-1/telemetry");
    const readings = (rows.body as { readings: Array<{ metric: string; value: number }> }).readings;
    assert.deepEqual(
      readings.map((r) => [r.metric, r.value]),
      [["t", 20]],
      "telemetry stored before hibernation is still there",
    );
    assert.deepEqual(dev.violations, []);
  });
});
