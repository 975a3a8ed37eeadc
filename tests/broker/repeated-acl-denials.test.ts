/**
 * A device that subscribes or publishes outside its own namespace again and again (a firmware bug, a probe) is refused
 * each time, and each refusal is counted; the warning is written at most once per device per interval, with `count`,
 * the refusals since its last line. Before, each refused filter of a SUBSCRIBE wrote its own line (a thousand filters
 * in one packet, a thousand lines, the session still up), and each refused publish one per connection.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { MqttClient } from "mqtt";
import { PUBLISH_DENIED_WARNING, SUBSCRIBE_DENIED_WARNING } from "../../broker/hooks/acl-warnings.ts";
import { THROTTLED_WARNING_INTERVAL_MS } from "../../broker/throttled-warning.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { closed, connectDevice, endClient, startTestBroker, warned } from "./helpers.ts";

/** One SUBSCRIBE packet with every filter of `topics`; resolves with the granted codes. */
function subscribeAll(client: MqttClient, topics: string[]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    client.subscribe(topics, { qos: 1 }, (err, granted) => {
      // mqtt.js reports a 0x80 SUBACK as an error that carries the packet.
      const refused = (err as { packet?: { granted?: number[] } } | null)?.packet?.granted;
      if (refused) return resolve(refused);
      if (err) return reject(err);
      resolve((granted ?? []).map((g) => g.qos));
    });
  });
}

const othersTopics = (n: number): string[] => Array.from({ length: n }, (_, i) => `devices/other-${i}/down/#`);

describe("a device refused by the ACL again and again", () => {
  test("a SUBSCRIBE of 100 filters outside the namespace: one warning per interval with the count, 100 counted", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({ clock });
    try {
      const secret = await tb.addDevice("prober");
      const client = await connectDevice(tb.url, { clientId: "prober", username: "prober", password: secret });
      try {
        const granted = await subscribeAll(client, othersTopics(100));
        assert.equal(granted.length, 100);
        assert.ok(granted.every((qos) => qos === 128));
        assert.equal(tb.broker.stats().aclDenied.subscribe, 100, "every filter counted");
        assert.deepEqual(warned(tb, SUBSCRIBE_DENIED_WARNING), [
          { device: "prober", topic: "devices/other-0/down/#", count: 1 },
        ]);

        clock.advanceSync(THROTTLED_WARNING_INTERVAL_MS);
        await subscribeAll(client, ["#"]);
        assert.deepEqual(warned(tb, SUBSCRIBE_DENIED_WARNING).at(-1), { device: "prober", topic: "#", count: 100 });
        assert.equal(warned(tb, SUBSCRIBE_DENIED_WARNING).length, 2);
        assert.equal(client.connected, true, "a refused filter leaves the session up");
      } finally {
        await endClient(client);
      }
    } finally {
      await tb.close();
    }
  });

  test("a publish outside the namespace on each of N connections: one warning per device per interval", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({ clock });
    try {
      const secrets = { a: await tb.addDevice("loop-a"), b: await tb.addDevice("loop-b") };
      const publishAndGetCut = async (id: "loop-a" | "loop-b", password: string): Promise<void> => {
        const client = await connectDevice(tb.url, { clientId: id, username: id, password, reconnectPeriod: 0 });
        const gone = closed(client);
        client.publish("devices/someone-else/up/telemetry", Buffer.from("x"), { qos: 0 });
        await gone;
        await endClient(client, true);
      };
      for (let i = 0; i < 4; i++) await publishAndGetCut("loop-a", secrets.a);
      await publishAndGetCut("loop-b", secrets.b);
      assert.equal(tb.broker.stats().aclDenied.publish, 5, "every refusal counted");
      assert.deepEqual(
        warned(tb, PUBLISH_DENIED_WARNING).map((w) => [w.device, w.count]),
        [
          ["loop-a", 1],
          ["loop-b", 1],
        ],
      );

      clock.advanceSync(THROTTLED_WARNING_INTERVAL_MS);
      await publishAndGetCut("loop-a", secrets.a);
      assert.deepEqual(warned(tb, PUBLISH_DENIED_WARNING).at(-1), {
        device: "loop-a",
        topic: "devices/someone-else/up/telemetry",
        count: 4,
      });
    } finally {
      await tb.close();
    }
  });
});
