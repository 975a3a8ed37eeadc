import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import mqttPacket from "mqtt-packet";
import { PacketSizeTracker } from "../../broker/listeners/packet-guard.ts";
import { connectRaw, startTestBroker } from "./helpers.ts";

function publishBytes(payloadBytes: number): Buffer {
  return mqttPacket.generate({
    cmd: "publish",
    topic: "devices/d/up/telemetry",
    payload: Buffer.alloc(payloadBytes, 1),
    qos: 0,
    dup: false,
    retain: false,
  });
}

/** Packets only a server sends ([MQTT-2.2.1]), as a client might send them by mistake or to probe the broker. */
const SERVER_ONLY_PACKETS = [
  { name: "CONNACK", bytes: mqttPacket.generate({ cmd: "connack", returnCode: 0, sessionPresent: false }) },
  { name: "SUBACK", bytes: mqttPacket.generate({ cmd: "suback", messageId: 1, granted: [0] }) },
  // mqtt-packet's typings want MQTT 5 reason codes on an UNSUBACK: its 3.1.1 bytes, packet id 1.
  { name: "UNSUBACK", bytes: Buffer.from([0xb0, 0x02, 0x00, 0x01]) },
  { name: "PINGRESP", bytes: mqttPacket.generate({ cmd: "pingresp" }) },
];

/**
 * Packets of the two reserved types ([MQTT-2.2.1] table 2.1: 0 and 15 "Forbidden"; 15 is AUTH in MQTT 5 only, which
 * the broker does not speak), as a client probing the broker or with a corrupted stream sends them.
 */
const RESERVED_TYPE_PACKETS = [
  { type: 0, name: "reserved type 0", bytes: Buffer.from([0x00, 0x00]) },
  { type: 15, name: "reserved type 15", bytes: Buffer.from([0xf0, 0x00]) },
];

describe("MQTT packet size guard", () => {
  test("packets within the limit pass however the stream is split into chunks", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }),
        (sizes, cuts) => {
          const bytes = Buffer.concat([...sizes.map(publishBytes), mqttPacket.generate({ cmd: "pingreq" })]);
          const tracker = new PacketSizeTracker(400, "client");
          let at = 0;
          let ok = true;
          for (let i = 0; at < bytes.length; i++) {
            const n = cuts[i % cuts.length];
            ok &&= tracker.feed(bytes.subarray(at, at + n));
            at += n;
          }
          return ok;
        },
      ),
    );
  });

  test("a packet announcing more than the limit is refused from its header alone", () => {
    const tracker = new PacketSizeTracker(1000, "client");
    assert.equal(tracker.feed(publishBytes(10)), true);
    const big = publishBytes(5000);
    // Only the fixed header (type + length) of the big packet is fed: its body never needs to arrive.
    assert.equal(tracker.feed(big.subarray(0, 3)), false);
  });

  test("a remaining length of more than four bytes is refused as malformed", () => {
    const tracker = new PacketSizeTracker(Number.MAX_SAFE_INTEGER, "client");
    assert.equal(tracker.feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])), false);
    assert.equal(tracker.refusal, "malformed-length");
  });

  test("packets only a server sends (CONNACK, SUBACK, UNSUBACK, PINGRESP) are refused from their first byte", () => {
    for (const packet of SERVER_ONLY_PACKETS) {
      const tracker = new PacketSizeTracker(1000, "client");
      assert.equal(tracker.feed(Buffer.concat([publishBytes(10), packet.bytes])), false, packet.name);
      assert.equal(tracker.refusal, "server-only", packet.name);
    }
    // Every packet a client may send passes.
    const tracker = new PacketSizeTracker(1000, "client");
    const fromClient = [
      mqttPacket.generate({ cmd: "puback", messageId: 1 }),
      mqttPacket.generate({ cmd: "pubrec", messageId: 1 }),
      mqttPacket.generate({ cmd: "pubrel", messageId: 1 }),
      mqttPacket.generate({ cmd: "pubcomp", messageId: 1 }),
      mqttPacket.generate({ cmd: "subscribe", messageId: 2, subscriptions: [{ topic: "devices/d/down/#", qos: 1 }] }),
      mqttPacket.generate({ cmd: "unsubscribe", messageId: 3, unsubscriptions: ["devices/d/down/#"] }),
      mqttPacket.generate({ cmd: "pingreq" }),
      mqttPacket.generate({ cmd: "disconnect" }),
    ];
    assert.equal(tracker.feed(Buffer.concat(fromClient)), true);
  });

  test("packets of the reserved types 0 and 15 are refused from their first byte, whatever their length", () => {
    for (const packet of RESERVED_TYPE_PACKETS) {
      for (const bytes of [packet.bytes, Buffer.from([packet.bytes[0] | 0x0f, 0x02, 0x00, 0x01])]) {
        const tracker = new PacketSizeTracker(1000, "client");
        assert.equal(tracker.feed(Buffer.concat([publishBytes(10), bytes])), false, packet.name);
        assert.equal(tracker.refusal, "reserved-type", packet.name);
        assert.equal(tracker.refusedPacketName, packet.name);
      }
    }
  });

  for (const packet of [...SERVER_ONLY_PACKETS, ...RESERVED_TYPE_PACKETS]) {
    test(`a device sending ${packet.name} is cut as a protocol violation and its session ends as an error`, async () => {
      const tb = await startTestBroker();
      try {
        const id = `sends-${packet.name.toLowerCase().replaceAll(" ", "-")}`;
        const secret = await tb.addDevice(id);
        const raw = await connectRaw(tb.port, { clientId: id, username: id, password: Buffer.from(secret) });
        raw.socket.write(packet.bytes);
        await raw.closed;
        assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_PROTOCOL_VIOLATION, 1);
        await tb.host.waitFor(() => tb.host.closes(id).length === 1);
        assert.equal(tb.host.closes(id)[0].reason, "error");
        const warning = tb.logger.lines.find((l) => l.msg === "MQTT protocol violation; connection cut");
        assert.equal(warning?.obj.packet, packet.name);
      } finally {
        await tb.close();
      }
    });
  }

  test("a device announcing a huge packet is cut off before the body and counted", async () => {
    const tb = await startTestBroker({ limits: { maxPayloadBytes: 1024 } });
    try {
      const secret = await tb.addDevice("huge");
      const raw = await connectRaw(tb.port, { clientId: "huge", username: "huge", password: Buffer.from(secret) });
      // Fixed header of a PUBLISH with a remaining length of 100 MB, and nothing else.
      raw.socket.write(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x30]));
      await raw.closed;
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_PACKET_TOO_LARGE, 1);
      await tb.host.waitFor(() => tb.host.closes("huge").length === 1);
    } finally {
      await tb.close();
    }
  });
});
