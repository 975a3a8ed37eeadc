/**
 * The clock a bridge is started with (`BridgeOptions.clock`) is the broker's clock too: its rate limits and its
 * subscribe grace period follow that clock, not the wall clock. A test that moves a manual clock sees the broker move.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { after, describe, test } from "node:test";
import { pino } from "pino";
import { type Bridge, createBridge } from "../../app/bridge.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { loopbackConfig, provisionDevices } from "../support/in-process-bridge.ts";
import { makeTempDir } from "./support/bridge-process.ts";
import { connectDevice } from "./support/device.ts";

const root = makeTempDir("bridge-clock-broker-");
after(() => fs.rmSync(root, { recursive: true, force: true }));
let dirs = 0;

const RATE_LIMITED = "BRIDGE_ERR_RATE_LIMITED";
const SUBSCRIBE_GRACE_MS = 10_000;

/** A loopback bridge on `clock`: one message a second per device, in bursts of two. */
async function startBridge(clock: ManualClock): Promise<{ bridge: Bridge; port: number }> {
  const config = loopbackConfig({ dataDir: `${root}/bridge-${++dirs}`, apiToken: "bridge-clock-token-0123456789" });
  const mqtt = {
    ...config.mqtt,
    subscribeGraceMs: SUBSCRIBE_GRACE_MS,
    limits: { ...config.mqtt.limits, messagesPerSecond: 1, burstMessages: 2 },
  };
  const bridge = await createBridge({ ...config, mqtt }, { logger: pino({ level: "silent" }), clock });
  const addresses = await bridge.start();
  return { bridge, port: addresses.mqtt?.port ?? 0 };
}

describe("the bridge's clock drives the broker", () => {
  test("a device's rate limit refills only when the bridge's clock moves, however long the wall clock runs", async () => {
    const clock = new ManualClock();
    const { bridge, port } = await startBridge(clock);
    try {
      const [credentials] = await provisionDevices(bridge, ["paced-1"], "cbor");
      const device = await connectDevice({ port, id: credentials.id, secret: credentials.secret, codec: "cbor" });
      try {
        const refused = (): number => bridge.broker.stats().limitBreaches[RATE_LIMITED] ?? 0;
        // The burst, then one over it.
        await device.send("telemetry", { r: { n: 1 } });
        await device.send("telemetry", { r: { n: 2 } });
        assert.equal(refused(), 0);
        await device.send("telemetry", { r: { n: 3 } });
        assert.equal(refused(), 1, "the third message of the burst is over the limit");
        // More than a second of wall-clock time refills nothing: the broker reads the bridge's clock.
        await sleep(1100);
        await device.send("telemetry", { r: { n: 4 } });
        assert.equal(refused(), 2, "still refused while the bridge's clock stands still");
        // One second on the bridge's clock refills one token: one message passes, the next is refused again.
        await clock.advance(1000);
        await device.send("telemetry", { r: { n: 5 } });
        assert.equal(refused(), 2, "accepted once the bridge's clock moved a second");
        await device.send("telemetry", { r: { n: 6 } });
        assert.equal(refused(), 3);
        const error = await device.waitFor("error", (frame) => frame.code === RATE_LIMITED);
        assert.equal(error.code, RATE_LIMITED);
      } finally {
        await device.end();
      }
    } finally {
      await bridge.stop();
    }
  });

  test("frames held for a device that has not subscribed are dropped when the bridge's clock passes the grace period", async () => {
    const clock = new ManualClock();
    const { bridge, port } = await startBridge(clock);
    try {
      const [credentials] = await provisionDevices(bridge, ["late-sub-1"], "json");
      // A JSON device is greeted (identity) as its session opens; it subscribes to its commands only, so the greeting
      // is held for the grace period. The SUBACK comes after the CONNACK's frames were flushed into the hold.
      const device = await connectDevice({
        port,
        id: credentials.id,
        secret: credentials.secret,
        codec: "json",
        subscribe: false,
      });
      try {
        await device.client.subscribeAsync(`devices/${credentials.id}/down/cmd`, { qos: 1 });
        const dropped = bridge.broker.stats().downDropped;
        await clock.advance(SUBSCRIBE_GRACE_MS - 1);
        assert.equal(
          bridge.broker.stats().downDropped,
          dropped,
          "held until the grace period ends on the bridge's clock",
        );
        await clock.advance(1);
        assert.ok(
          bridge.broker.stats().downDropped > dropped,
          "dropped once the bridge's clock passed the grace period",
        );
        // Subscribing now finds nothing held: the greeting is gone.
        await device.client.subscribeAsync(`devices/${credentials.id}/down/#`, { qos: 1 });
        await sleep(100);
        assert.deepEqual(
          device.received.filter((r) => r.channel === "identity"),
          [],
        );
      } finally {
        await device.end();
      }
    } finally {
      await bridge.stop();
    }
  });
});
