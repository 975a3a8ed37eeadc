import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type mqttPacket from "mqtt-packet";
import { connectRaw, type RawDevice, startTestBroker, waitUntil } from "./helpers.ts";

/** Sends a SUBSCRIBE (or UNSUBSCRIBE) and resolves with its answer. */
async function exchange(device: RawDevice, packet: mqttPacket.Packet, answer: "suback" | "unsuback") {
  const seen = device.packets.filter((p) => p.cmd === answer).length;
  device.burst([packet]);
  await waitUntil(() => device.packets.filter((p) => p.cmd === answer).length > seen);
  return device.packets.filter((p) => p.cmd === answer).at(-1);
}

const subscribe = async (device: RawDevice, topics: string[]): Promise<number[]> => {
  const subscriptions = topics.map((topic) => ({ topic, qos: 1 as const }));
  const suback = await exchange(device, { cmd: "subscribe", messageId: 1, subscriptions }, "suback");
  return (suback as mqttPacket.ISubackPacket).granted as number[];
};

const down = (id: string, n: number) => `devices/${id}/down/c${n}`;

describe("a device's subscriptions are bounded (limits.maxSubscriptionsPerDevice)", () => {
  test("filters past the limit get SUBACK 0x80 and are counted; the session stays up, and its own filters may change", async () => {
    const tb = await startTestBroker({ limits: { maxSubscriptionsPerDevice: 4 } });
    try {
      const secret = await tb.addDevice("many");
      const device = await connectRaw(tb.port, { clientId: "many", username: "many", password: Buffer.from(secret) });
      assert.deepEqual(
        await subscribe(
          device,
          [1, 2, 3].map((n) => down("many", n)),
        ),
        [1, 1, 1],
      );
      // One more fits.
      assert.deepEqual(
        await subscribe(
          device,
          [4, 5, 6].map((n) => down("many", n)),
        ),
        [1, 128, 128],
      );
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_SUBSCRIPTION_LIMIT, 2);
      assert.ok(tb.logger.lines.some((l) => l.level === "warn" && l.obj.device === "many" && l.obj.max === 4));
      // A filter the session holds is granted again at the limit (a QoS change), and an unsubscribe makes room.
      assert.deepEqual(await subscribe(device, [down("many", 2)]), [1]);
      await exchange(device, { cmd: "unsubscribe", messageId: 2, unsubscriptions: [down("many", 1)] }, "unsuback");
      await waitUntil(() => tb.broker.stats().limitBreaches.BRIDGE_ERR_SUBSCRIPTION_LIMIT === 2);
      assert.deepEqual(await subscribe(device, [down("many", 7)]), [1]);
      assert.equal(device.socket.destroyed, false);
      device.socket.destroy();
    } finally {
      await tb.close();
    }
  });

  test("a persistent session keeps its bound across reconnects: what aedes restores counts, and nothing past it is kept", async () => {
    const tb = await startTestBroker({ limits: { maxSubscriptionsPerDevice: 2 } });
    try {
      const creds = { clientId: "keeps", username: "keeps", password: Buffer.from(await tb.addDevice("keeps")) };
      for (let session = 0; session < 3; session++) {
        const device = await connectRaw(tb.port, { ...creds, clean: false });
        // Each session tries two new filters; only the first session's fit, and they are restored each time.
        const granted = await subscribe(device, [down("keeps", 2 * session + 1), down("keeps", 2 * session + 2)]);
        assert.deepEqual(granted, session === 0 ? [1, 1] : [128, 128]);
        device.socket.destroy();
        await waitUntil(() => !tb.broker.isOnline("keeps"));
      }
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_SUBSCRIPTION_LIMIT, 4);
    } finally {
      await tb.close();
    }
  });
});
