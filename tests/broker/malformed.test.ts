import assert from "node:assert/strict";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import { encode as cborEncode } from "cbor-x";
import type { MqttClient } from "mqtt";
import mqttPacket from "mqtt-packet";
import { getCodec } from "../../codecs/index.ts";
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

const cbor = getCodec("cbor");

function nested(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

/** Every malformed thing one device sends, and the code of the error frame it must get back. */
const cases: Array<{ name: string; channel: string; payload: Uint8Array; code: string }> = [
  {
    name: "bytes that are not CBOR",
    channel: "telemetry",
    payload: Buffer.from([0xff, 0xfe, 0x00]),
    code: "BRIDGE_ERR_FRAME_DECODE",
  },
  {
    name: "JSON text to a CBOR device",
    channel: "telemetry",
    payload: Buffer.from('{"r":{"t":1}}'),
    code: "BRIDGE_ERR_FRAME_DECODE",
  },
  {
    name: "CBOR of the wrong shape",
    channel: "telemetry",
    payload: cborEncode({ r: "not-a-map" }),
    code: "BRIDGE_ERR_FRAME_INVALID",
  },
  {
    name: "an rpc frame without its id",
    channel: "rpc",
    payload: cborEncode({ m: "x" }),
    code: "BRIDGE_ERR_FRAME_INVALID",
  },
  {
    name: "nesting deeper than the limit",
    channel: "telemetry",
    payload: cborEncode({ r: nested(40) }),
    code: "BRIDGE_ERR_FRAME_TOO_DEEP",
  },
  { name: "an unknown channel", channel: "bogus", payload: cborEncode({}), code: "BRIDGE_ERR_UNKNOWN_CHANNEL" },
  {
    name: "an unknown codec suffix",
    channel: "telemetry/xml",
    payload: cborEncode({}),
    code: "BRIDGE_ERR_UNKNOWN_CODEC",
  },
  {
    name: "extra topic levels",
    channel: "telemetry/cbor/extra",
    payload: cborEncode({}),
    code: "BRIDGE_ERR_TOPIC_INVALID",
  },
  {
    name: "a payload over the size limit",
    channel: "telemetry",
    payload: Buffer.alloc(2048, 0xa0),
    code: "BRIDGE_ERR_FRAME_TOO_LARGE",
  },
  { name: "an empty payload", channel: "telemetry", payload: Buffer.alloc(0), code: "BRIDGE_ERR_FRAME_DECODE" },
  {
    name: "garbage declared as protobuf",
    channel: "telemetry/pb",
    payload: Buffer.from([0x0a, 0xff, 0xff, 0xff]),
    code: "BRIDGE_ERR_FRAME_DECODE",
  },
  {
    name: "broken JSON declared as JSON",
    channel: "telemetry/json",
    payload: Buffer.from('{"r":'),
    code: "BRIDGE_ERR_FRAME_DECODE",
  },
  {
    name: "a hello naming an unknown codec",
    channel: "hello",
    payload: cborEncode({ fw: "1", codec: "xml" }),
    code: "BRIDGE_ERR_FRAME_INVALID",
  },
];

describe("broker with malformed frames", () => {
  let tb: TestBroker;
  let strict: MqttClient;
  let good: MqttClient;
  let strictInbox: ReturnType<typeof collect>;
  const violations: string[] = [];

  before(async () => {
    tb = await startTestBroker({ limits: { maxPayloadBytes: 1024 } });
    const s1 = await tb.addDevice("strict", "cbor");
    const s2 = await tb.addDevice("good", "cbor");
    strict = await connectDevice(tb.url, { clientId: "strict", username: "strict", password: s1 });
    good = await connectDevice(tb.url, { clientId: "good", username: "good", password: s2 });
    strictInbox = collect(strict);
    // A strict binary device: its firmware fails on anything that is not a CBOR frame of the topic's channel.
    strict.on("message", (topic, payload) => {
      const channel = topic.split("/")[3] as "error";
      if (payload[0] === 0x7b || !cbor.decodeDown(channel, payload).ok)
        violations.push(`${topic}: ${payload.toString("hex")}`);
    });
    await subscribe(strict, "devices/strict/down/#");
  });
  after(async () => {
    await endClient(strict, true);
    await endClient(good, true);
    await tb.close();
  });

  for (const c of cases) {
    test(`${c.name} gets a CBOR error frame ${c.code}, and another device keeps working`, async () => {
      const errorsBefore = strictInbox.length;
      await publish(strict, `devices/strict/up/${c.channel}`, c.payload);
      await waitUntil(() => strictInbox.length > errorsBefore);
      const reply = strictInbox.at(-1)!;
      assert.equal(reply.topic, "devices/strict/down/error");
      const decoded = cbor.decodeDown("error", reply.payload);
      assert.ok(decoded.ok);
      assert.equal(decoded.frame.code, c.code);
      assert.equal(typeof decoded.frame.msg, "string");

      const n = tb.host.deliveries("good").length;
      await publish(good, "devices/good/up/telemetry", cbor.encodeUp("telemetry", { r: { n } }));
      assert.deepEqual(tb.host.deliveries("good").at(-1)?.message.frame, { r: { n } });
      assert.equal(strict.connected, true);
      assert.deepEqual(violations, []);
    });
  }

  test("no malformed frame reached the agent and every one was counted", () => {
    assert.equal(tb.host.deliveries("strict").length, 0);
    const stats = tb.broker.stats();
    const decodeErrors = Object.values(stats.decodeErrors).reduce((a, b) => a + b, 0);
    const tooLarge = stats.limitBreaches.BRIDGE_ERR_FRAME_TOO_LARGE ?? 0;
    assert.equal(decodeErrors + tooLarge, cases.length);
    assert.equal(tb.broker.isOnline("strict"), true);
  });

  test("random bytes on raw sockets, before and after a valid CONNECT, never harm the broker or another device", async () => {
    // A seeded generator keeps the test deterministic.
    let seed = 0x2545f491;
    const nextByte = (): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) & 0xff;
    };
    const garbage = (n: number): Buffer => Buffer.from(Array.from({ length: n }, nextByte));
    const secret = await tb.addDevice("fuzz");
    for (let round = 0; round < 12; round++) {
      const raw = net.createConnection(tb.port, "127.0.0.1").on("error", () => {});
      await new Promise((resolve) => raw.once("connect", resolve));
      if (round % 2 === 1) {
        raw.write(
          mqttPacket.generate({
            cmd: "connect",
            protocolId: "MQTT",
            protocolVersion: 4,
            clean: true,
            keepalive: 30,
            clientId: "fuzz",
            username: "fuzz",
            password: Buffer.from(secret),
          }),
        );
      }
      raw.write(garbage(64 + round * 97));
      await new Promise((resolve) => setTimeout(resolve, 20));
      raw.destroy();
    }
    const n = tb.host.deliveries("good").length;
    await publish(good, "devices/good/up/telemetry", cbor.encodeUp("telemetry", { r: { n } }));
    assert.deepEqual(tb.host.deliveries("good").at(-1)?.message.frame, { r: { n } });
    assert.equal(strict.connected, true);
  });
});
