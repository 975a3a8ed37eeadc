import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { MqttClient } from "mqtt";
import { getCodec } from "../../codecs/index.ts";
import { closed, connectDevice, endClient, publish, startTestBroker, subscribe, type TestBroker } from "./helpers.ts";

const cbor = getCodec("cbor");

describe("broker ACL", () => {
  let tb: TestBroker;
  let secrets: Record<string, string>;

  before(async () => {
    tb = await startTestBroker();
    secrets = { alice: await tb.addDevice("alice"), bob: await tb.addDevice("bob") };
  });
  after(() => tb.close());

  const connect = (id: string): Promise<MqttClient> =>
    connectDevice(tb.url, { clientId: id, username: id, password: secrets[id] });

  test("subscribing outside devices/{own id}/down/ gets SUBACK 0x80 and the session stays up", async () => {
    const alice = await connect("alice");
    try {
      const before = tb.broker.stats().aclDenied.subscribe;
      assert.deepEqual(await subscribe(alice, "devices/bob/down/#"), [128]);
      assert.deepEqual(await subscribe(alice, "devices/+/down/#"), [128]);
      assert.deepEqual(await subscribe(alice, "devices/alice/up/#"), [128]);
      assert.deepEqual(await subscribe(alice, "#"), [128]);
      assert.deepEqual(await subscribe(alice, "$SYS/#"), [128]);
      assert.deepEqual(await subscribe(alice, "devices/alice/down/#"), [1]);
      assert.deepEqual(await subscribe(alice, "devices/alice/down/cmd", 0), [0]);
      assert.equal(tb.broker.stats().aclDenied.subscribe, before + 5);
      assert.equal(alice.connected, true);
    } finally {
      await endClient(alice);
    }
  });

  test("publishing to another device's topic disconnects the sender, is counted, and reaches no agent", async () => {
    const alice = await connect("alice");
    const bob = await connect("bob");
    try {
      const before = tb.broker.stats().aclDenied.publish;
      const deliveriesBefore = tb.host.deliveries().length;
      const gone = closed(alice);
      alice.publish("devices/bob/up/telemetry", Buffer.from(cbor.encodeUp("telemetry", { r: { evil: 1 } })), {
        qos: 1,
      });
      await gone;
      assert.equal(tb.broker.stats().aclDenied.publish, before + 1);
      assert.equal(tb.host.deliveries().length, deliveriesBefore);
      await tb.host.waitFor(() => tb.host.closes("alice").at(-1)?.reason === "error");
      assert.equal(tb.broker.isOnline("alice"), false);
      // Bob is untouched.
      await publish(bob, "devices/bob/up/telemetry", cbor.encodeUp("telemetry", { r: { fine: 1 } }));
      assert.deepEqual(tb.host.deliveries("bob").at(-1)?.message.frame, { r: { fine: 1 } });
    } finally {
      await endClient(alice, true);
      await endClient(bob);
    }
  });

  test("publishing outside the devices/ tree, or to its own down topic, disconnects too", async () => {
    for (const topic of ["random/topic", "devices/alice/down/cmd", "$SYS/x"]) {
      const alice = await connect("alice");
      const gone = closed(alice);
      alice.publish(topic, Buffer.from("x"), { qos: 0 });
      await gone;
      await endClient(alice, true);
    }
    assert.ok(tb.broker.stats().aclDenied.publish >= 3);
  });
});
