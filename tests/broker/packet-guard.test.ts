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

describe("MQTT packet size guard", () => {
  test("packets within the limit pass however the stream is split into chunks", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }),
        (sizes, cuts) => {
          const bytes = Buffer.concat([...sizes.map(publishBytes), mqttPacket.generate({ cmd: "pingreq" })]);
          const tracker = new PacketSizeTracker(400);
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
    const tracker = new PacketSizeTracker(1000);
    assert.equal(tracker.feed(publishBytes(10)), true);
    const big = publishBytes(5000);
    // Only the fixed header (type + length) of the big packet is fed: its body never needs to arrive.
    assert.equal(tracker.feed(big.subarray(0, 3)), false);
  });

  test("a remaining length of more than four bytes is refused as malformed", () => {
    const tracker = new PacketSizeTracker(Number.MAX_SAFE_INTEGER);
    assert.equal(tracker.feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])), false);
  });

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
