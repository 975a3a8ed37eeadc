/**
 * A device in a reconnect loop gets the same refusal again and again: its agent cannot start (an onStart that keeps
 * timing out backs off for up to 5 min), its record was removed or its secret rotated, its last will is not allowed,
 * the broker is full. Each refusal is counted, exactly; the warning is written at most once per device (and reason)
 * per interval, with `count`, the refusals since its last line. Before, a device retrying every second wrote one line
 * per CONNECT: ~300 per 5-minute backoff step.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { THROTTLED_WARNING_INTERVAL_MS } from "../../broker/throttled-warning.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { connackCode, connectDevice, endClient, startTestBroker, warned } from "./helpers.ts";

const START_TIMEOUT = "BRIDGE_ERR_AGENT_START_TIMEOUT";

/** `times` CONNECTs one after another; the CONNACK codes they got. */
async function retry(times: number, connect: () => Promise<number>): Promise<number[]> {
  const codes: number[] = [];
  for (let i = 0; i < times; i++) codes.push(await connect());
  return codes;
}

describe("a device reconnecting into the same refusal", () => {
  test("an agent that cannot start: one warning per device per interval, every refusal counted", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({ clock });
    try {
      const loop = await tb.addDevice("loop-1");
      const other = await tb.addDevice("loop-2");
      tb.host.openResult = { status: "failed", code: START_TIMEOUT, message: "agent loop-1 is not started" };
      const asLoop = { clientId: "loop-1", username: "loop-1", password: loop };
      assert.deepEqual(await retry(5, () => connackCode(tb.url, asLoop)), [3, 3, 3, 3, 3]);
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_OPEN_FAILED, 5, "every refusal counted");
      assert.deepEqual(warned(tb, "agent refused the connection"), [
        { device: "loop-1", code: START_TIMEOUT, count: 1 },
      ]);

      // Another device is not hidden behind the first one's line.
      assert.equal(await connackCode(tb.url, { clientId: "loop-2", username: "loop-2", password: other }), 3);
      assert.equal(warned(tb, "agent refused the connection").length, 2);

      // After the interval: one line again, with the refusals since the last one.
      clock.advanceSync(THROTTLED_WARNING_INTERVAL_MS);
      assert.equal(await connackCode(tb.url, asLoop), 3);
      assert.deepEqual(warned(tb, "agent refused the connection").at(-1), {
        device: "loop-1",
        code: START_TIMEOUT,
        count: 5,
      });
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_OPEN_FAILED, 7);
    } finally {
      await tb.close();
    }
  });

  test("a removed device retrying its old secret: one warning per interval, every failure counted", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({ clock });
    try {
      const secret = await tb.addDevice("gone-1");
      assert.equal(tb.registry.remove("gone-1"), true);
      const asGone = { clientId: "gone-1", username: "gone-1", password: secret };
      assert.deepEqual(await retry(4, () => connackCode(tb.url, asGone)), [4, 4, 4, 4]);
      assert.equal(tb.broker.stats().authFailures["unknown-device"], 4);
      const lines = warned(tb, "device refused: unknown device");
      assert.equal(lines.length, 1);
      assert.equal(lines[0]?.count, 1);

      clock.advanceSync(THROTTLED_WARNING_INTERVAL_MS);
      assert.equal(await connackCode(tb.url, asGone), 4);
      assert.equal(warned(tb, "device refused: unknown device").at(-1)?.count, 4);
    } finally {
      await tb.close();
    }
  });

  test("a last will outside the device's topics (never blocked by the connect guard): one warning per interval", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({ clock });
    try {
      const secret = await tb.addDevice("will-1");
      const badWill = {
        clientId: "will-1",
        username: "will-1",
        password: secret,
        will: { topic: "devices/other/up/status", payload: Buffer.from("x"), qos: 0 as const, retain: false },
      };
      assert.deepEqual(await retry(6, () => connackCode(tb.url, badWill)), [5, 5, 5, 5, 5, 5]);
      assert.equal(tb.broker.stats().authFailures["will-denied"], 6);
      assert.equal(warned(tb, "device refused: last will must be under devices/{id}/up/").length, 1);
    } finally {
      await tb.close();
    }
  });

  test("a full broker: the connection limit is warned once per interval, every refusal counted", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({ clock, limits: { maxConnections: 1 } });
    const first = await tb.addDevice("full-1");
    const second = await tb.addDevice("full-2");
    const online = await connectDevice(tb.url, { clientId: "full-1", username: "full-1", password: first });
    try {
      const asSecond = { clientId: "full-2", username: "full-2", password: second };
      assert.deepEqual(await retry(4, () => connackCode(tb.url, asSecond)), [3, 3, 3, 3]);
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_CONNECTION_LIMIT, 4);
      assert.deepEqual(warned(tb, "connection limit reached"), [{ device: "full-2", max: 1, count: 1 }]);
    } finally {
      await endClient(online, true);
      await tb.close();
    }
  });
});
