/**
 * The broker turns off mqtt-packet's table of number buffers (broker/packet-number-cache.ts): packets still carry
 * their packet ids and topic lengths, and the 65,536-entry table is never filled. Runs in a process of its own (the
 * test runner's default), so no other broker or client wrote a packet before this one started.
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { after, before, test } from "node:test";
import mqttPacket from "mqtt-packet";
import {
  collect,
  connectDevice,
  endClient,
  publish,
  startTestBroker,
  subscribe,
  type TestBroker,
  waitUntil,
} from "./helpers.ts";

/** mqtt-packet's own table, the object its writer fills on first use when the cache is on. */
const numbers = createRequire(import.meta.url)("mqtt-packet/numbers.js") as { cache: Record<string, Buffer> };

let tb: TestBroker;
before(async () => {
  tb = await startTestBroker();
});
after(() => tb.close());

test("packets with ids and topics flow both ways, and mqtt-packet's number table stays empty", async () => {
  assert.equal(mqttPacket.writeToStream.cacheNumbers, false);
  const secret = await tb.addDevice("numbers", "json");
  const client = await connectDevice(tb.url, { clientId: "numbers", username: "numbers", password: secret });
  try {
    const inbox = collect(client);
    // SUBACK and PUBACK carry packet ids; the down PUBLISH a topic length and, at QoS 1, an id.
    assert.deepEqual(await subscribe(client, "devices/numbers/down/#", 1), [1]);
    await publish(client, "devices/numbers/up/telemetry", JSON.stringify({ ts: 1, r: { t: 21.5 } }), 1);
    tb.host.transportOf("numbers").send({ channel: "reason", frame: { id: "q", seq: 0, fin: true } }, { qos: 1 });
    await waitUntil(() => inbox.length === 1);
    assert.equal(inbox[0]?.topic, "devices/numbers/down/reason");
    assert.equal(inbox[0]?.qos, 1);
    assert.deepEqual(JSON.parse(inbox[0]?.payload.toString("utf8") ?? ""), { id: "q", seq: 0, fin: true });
  } finally {
    await endClient(client);
  }
  assert.equal(Object.keys(numbers.cache).length, 0, "the table of 65,536 number buffers was filled");
});
