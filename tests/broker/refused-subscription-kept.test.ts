import assert from "node:assert/strict";
import { test } from "node:test";
import type mqttPacket from "mqtt-packet";
import { getCodec } from "../../codecs/index.ts";
import { connectRaw, publishPacket, type RawDevice, startTestBroker, waitUntil } from "./helpers.ts";

const cbor = getCodec("cbor");

/** Sends a SUBSCRIBE and resolves with its SUBACK's granted list. */
async function subscribeRaw(device: RawDevice, topics: string[]): Promise<number[]> {
  const seen = device.packets.filter((p) => p.cmd === "suback").length;
  device.burst([{ cmd: "subscribe", messageId: 7, subscriptions: topics.map((topic) => ({ topic, qos: 1 })) }]);
  await waitUntil(() => device.packets.filter((p) => p.cmd === "suback").length > seen);
  return (device.packets.filter((p) => p.cmd === "suback").at(-1) as mqttPacket.ISubackPacket).granted as number[];
}

test("a persistent session's refused filter, sent beside a granted one, is not kept: nobody's messages queue for it, and a reconnect does not restore it", async () => {
  const tb = await startTestBroker();
  try {
    const creds = { clientId: "keeper", username: "keeper", password: Buffer.from(await tb.addDevice("keeper")) };
    const chattySecret = await tb.addDevice("chatty");
    const keeper = await connectRaw(tb.port, { ...creds, clean: false });
    // aedes stores a persistent session's SUBSCRIBE as the device sent it, refused filters included; a filter over
    // every device's up topics, kept, had every QoS 1 message of the fleet queued for this device.
    assert.deepEqual(await subscribeRaw(keeper, ["devices/keeper/down/#", "devices/+/up/#"]), [1, 128]);
    assert.equal(tb.broker.stats().aclDenied.subscribe, 1);
    keeper.socket.destroy();
    await waitUntil(() => !tb.broker.isOnline("keeper"));
    const chatty = await connectRaw(tb.port, {
      clientId: "chatty",
      username: "chatty",
      password: Buffer.from(chattySecret),
    });
    chatty.burst(
      [1, 2, 3].map((n) => publishPacket("devices/chatty/up/telemetry", cbor.encodeUp("telemetry", { r: { n } }), n)),
    );
    await waitUntil(() => chatty.packets.filter((p) => p.cmd === "puback").length === 3);
    // The reconnect restores what aedes kept of the session: the granted filter only, so nothing is refused again.
    const back = await connectRaw(tb.port, { ...creds, clean: false });
    assert.equal((back.packets.find((p) => p.cmd === "connack") as mqttPacket.IConnackPacket).sessionPresent, true);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(tb.broker.stats().aclDenied.subscribe, 1);
    assert.equal(back.packets.filter((p) => p.cmd === "publish").length, 0);
    back.socket.destroy();
    chatty.socket.destroy();
  } finally {
    await tb.close();
  }
});
