import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type mqttPacket from "mqtt-packet";
import type { DeviceConnection } from "../../broker/connection.ts";
import { Qos2InFlight } from "../../broker/qos2-inflight.ts";
import { getCodec } from "../../codecs/index.ts";
import { connectRaw, publishPacket, type RawDevice, startTestBroker, waitUntil } from "./helpers.ts";

const cbor = getCodec("cbor");

function qos2(deviceId: string, n: number, messageId: number, dup: boolean): mqttPacket.IPublishPacket {
  const frame = cbor.encodeUp("telemetry", { r: { n } });
  return { ...publishPacket(`devices/${deviceId}/up/telemetry`, frame, messageId), qos: 2, dup };
}

/**
 * Sends `packets` and a PINGREQ in one write and waits for the PINGRESP: aedes hands a read's packets to the broker's
 * hooks in order, so once the PINGRESP is back the broker has seen every packet before it.
 */
async function sendAndSync(device: RawDevice, packets: mqttPacket.Packet[]): Promise<void> {
  const pongs = device.packets.filter((p) => p.cmd === "pingresp").length;
  device.burst([...packets, { cmd: "pingreq" }]);
  await waitUntil(() => device.packets.filter((p) => p.cmd === "pingresp").length > pongs);
}

const answers = (device: RawDevice) =>
  device.packets.filter((p) => p.cmd === "pubrec" || p.cmd === "puback").map((p) => [p.cmd, p.messageId]);

describe("QoS 2 copies resent while the first is still being handled", () => {
  test("a copy resent before the first one's event committed waits for it and is answered once more with PUBREC, never delivered twice", async () => {
    const tb = await startTestBroker();
    try {
      const secret = await tb.addDevice("q2-slow");
      const device = await connectRaw(tb.port, {
        clientId: "q2-slow",
        username: "q2-slow",
        password: Buffer.from(secret),
      });
      try {
        // The agent's commit is held: the first copy is inside the broker, not yet stored by aedes.
        tb.host.hold = true;
        await sendAndSync(device, [qos2("q2-slow", 1, 5, false)]);
        assert.equal(tb.host.deliveries("q2-slow").length, 1);
        // The device gives up waiting for the PUBREC and sends the message again, DUP set ([MQTT-4.3.3]), then a
        // new message behind it.
        await sendAndSync(device, [
          qos2("q2-slow", 1, 5, true),
          publishPacket("devices/q2-slow/up/telemetry", cbor.encodeUp("telemetry", { r: { n: 2 } }), 6),
        ]);
        assert.deepEqual(answers(device), [], "nothing is answered before the first copy committed");
        tb.host.release();
        await waitUntil(() => answers(device).length === 3);
        assert.deepEqual(
          tb.host.deliveries("q2-slow").map((d) => d.message.frame),
          [{ r: { n: 1 } }, { r: { n: 2 } }],
        );
        assert.deepEqual(answers(device), [
          ["pubrec", 5],
          ["pubrec", 5],
          ["puback", 6],
        ]);
        // The handshake completes, and the packet id is free again for a new message.
        device.burst([{ cmd: "pubrel", messageId: 5 }]);
        await waitUntil(() => device.packets.some((p) => p.cmd === "pubcomp"));
        await sendAndSync(device, [qos2("q2-slow", 3, 5, false)]);
        await waitUntil(() => answers(device).length === 4);
        assert.deepEqual(
          tb.host.deliveries("q2-slow").map((d) => d.message.frame),
          [{ r: { n: 1 } }, { r: { n: 2 } }, { r: { n: 3 } }],
        );
      } finally {
        device.socket.destroy();
      }
    } finally {
      await tb.close();
    }
  });

  test("a persistent session's copy resent after a reconnect, while the first is still being handled, is not delivered twice", async () => {
    const tb = await startTestBroker();
    try {
      const secret = await tb.addDevice("q2-back");
      const creds = { clientId: "q2-back", username: "q2-back", password: Buffer.from(secret), clean: false };
      const first = await connectRaw(tb.port, creds);
      tb.host.hold = true;
      await sendAndSync(first, [qos2("q2-back", 1, 9, false)]);
      assert.equal(tb.host.deliveries("q2-back").length, 1);
      first.socket.destroy();
      await tb.host.waitFor(() => tb.host.closes("q2-back").length === 1);

      const second = await connectRaw(tb.port, creds);
      try {
        await sendAndSync(second, [qos2("q2-back", 1, 9, true)]);
        assert.equal(tb.host.deliveries("q2-back").length, 1, "the resent copy waits for the first one's outcome");
        tb.host.release();
        await waitUntil(() => answers(second).length === 1);
        assert.deepEqual(answers(second), [["pubrec", 9]]);
        assert.equal(tb.host.deliveries("q2-back").length, 1);
      } finally {
        second.socket.destroy();
      }
    } finally {
      await tb.close();
    }
  });

  test("a clean session's message reusing a packet id of the previous connection's message in flight is new, and delivered", async () => {
    const tb = await startTestBroker();
    try {
      const secret = await tb.addDevice("q2-clean");
      const creds = { clientId: "q2-clean", username: "q2-clean", password: Buffer.from(secret), clean: true };
      const first = await connectRaw(tb.port, creds);
      tb.host.hold = true;
      await sendAndSync(first, [qos2("q2-clean", 1, 4, false)]);
      first.socket.destroy();
      await tb.host.waitFor(() => tb.host.closes("q2-clean").length === 1);

      const second = await connectRaw(tb.port, creds);
      try {
        await sendAndSync(second, [qos2("q2-clean", 2, 4, false)]);
        tb.host.release();
        await waitUntil(() => answers(second).length === 1);
        assert.deepEqual(
          tb.host.deliveries("q2-clean").map((d) => d.message.frame),
          [{ r: { n: 1 } }, { r: { n: 2 } }],
        );
      } finally {
        second.socket.destroy();
      }
    } finally {
      await tb.close();
    }
  });
});

describe("Qos2InFlight", () => {
  const connectionOf = (deviceId: string) => ({ deviceId }) as DeviceConnection;

  test("a message is found while it is handled and forgotten once settled, with its outcome handed to waiters", async () => {
    const inFlight = new Qos2InFlight();
    const connection = connectionOf("d1");
    const settle = inFlight.begin(connection, 7);
    const found = inFlight.find("d1", 7);
    assert.equal(found?.connection, connection);
    assert.equal(inFlight.find("d1", 8), undefined);
    assert.equal(inFlight.find("d2", 7), undefined);
    settle({ status: "ack" });
    assert.deepEqual(await found?.outcome, { status: "ack" });
    assert.equal(inFlight.find("d1", 7), undefined);
    assert.equal(inFlight.devices, 0, "nothing is kept for a device with nothing in flight");
  });

  test("a later connection that took a packet id over keeps it when the earlier one settles", () => {
    const inFlight = new Qos2InFlight();
    const older = connectionOf("d1");
    const newer = connectionOf("d1");
    const settleOlder = inFlight.begin(older, 3);
    const settleNewer = inFlight.begin(newer, 3);
    settleOlder({ status: "disconnect", code: "closed", message: "session closed" });
    assert.equal(inFlight.find("d1", 3)?.connection, newer);
    settleNewer({ status: "ack" });
    assert.equal(inFlight.find("d1", 3), undefined);
  });
});
