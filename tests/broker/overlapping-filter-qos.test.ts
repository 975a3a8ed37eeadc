/**
 * A frame whose topic matches both a wildcard filter granted QoS 1 and a filter equal to the topic granted QoS 0: aedes
 * writes it at the exact filter's QoS 0, so it must not be handed to aedes as QoS 1, which a persistent session stores
 * until a PUBACK that never comes and replays at every reconnect.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type mqttPacket from "mqtt-packet";
import { getCodec } from "../../codecs/index.ts";
import { connectRaw, startTestBroker, waitUntil } from "./helpers.ts";

const cbor = getCodec("cbor");

function commandIds(packets: mqttPacket.Packet[]): string[] {
  return packets
    .filter((p): p is mqttPacket.IPublishPacket => p.cmd === "publish")
    .map((p) => {
      const decoded = cbor.decodeDown("cmd", p.payload as Buffer);
      return decoded.ok ? String(decoded.frame.id) : decoded.code;
    });
}

test("a command written at an exact filter's QoS 0 does not come again after a persistent reconnect", async () => {
  const tb = await startTestBroker();
  try {
    const secret = await tb.addDevice("ov", "cbor");
    const connect = { clientId: "ov", username: "ov", password: Buffer.from(secret), clean: false };
    const first = await connectRaw(tb.port, connect);
    try {
      first.burst([
        {
          cmd: "subscribe",
          messageId: 1,
          subscriptions: [
            { topic: "devices/ov/down/#", qos: 1 },
            { topic: "devices/ov/down/cmd", qos: 0 },
          ],
        },
      ]);
      await waitUntil(() => first.packets.some((p) => p.cmd === "suback"));
      tb.host.transportOf("ov").send({ channel: "cmd", frame: { id: "c1", n: "first" } }, { qos: 1 });
      await waitUntil(() => commandIds(first.packets).length === 1);
      const got = first.packets.find((p): p is mqttPacket.IPublishPacket => p.cmd === "publish");
      assert.equal(got?.qos, 0, "aedes writes it at the exact filter's QoS");
    } finally {
      first.socket.destroy();
    }
    await first.closed;
    await waitUntil(() => tb.host.closes("ov").length === 1);

    const second = await connectRaw(tb.port, connect);
    try {
      tb.host.transportOf("ov").send({ channel: "cmd", frame: { id: "c2", n: "second" } }, { qos: 1 });
      await waitUntil(() => commandIds(second.packets).includes("c2"));
      assert.deepEqual(commandIds(second.packets), ["c2"], "c1 was delivered once already, at QoS 0");
    } finally {
      second.socket.destroy();
    }
  } finally {
    await tb.close();
  }
});
