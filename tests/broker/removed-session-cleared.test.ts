/**
 * aedes keeps a persistent session (clean: false) in its store by client id: subscriptions, offline queue, QoS 2
 * messages waiting for their PUBREL, last will. A removed device's session is dropped whole
 * (broker/persistent-session.ts), whether it was online when removed or not, so a device provisioned later under the
 * same id that connects with clean: false starts a clean session: sessionPresent 0, no subscription of the old device
 * delivering to it, and its QoS 2 packet ids naming new messages.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type mqttPacket from "mqtt-packet";
import { getCodec } from "../../codecs/index.ts";
import { connectRaw, publishPacket, type RawDevice, startTestBroker, type TestBroker, waitUntil } from "./helpers.ts";

const cbor = getCodec("cbor");
const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function sessionPresent(device: RawDevice): boolean {
  return (device.packets.find((p) => p.cmd === "connack") as mqttPacket.IConnackPacket).sessionPresent;
}

describe("a removed device's persistent session", () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startTestBroker();
  });
  after(() => tb.close());

  const connect = (id: string, secret: string): Promise<RawDevice> =>
    connectRaw(tb.port, { clientId: id, username: id, password: Buffer.from(secret), clean: false });

  /** Connects with a session, subscribes to the device's down topics at QoS 1 and leaves a QoS 2 message unreleased. */
  async function leaveSession(id: string, secret: string): Promise<RawDevice> {
    const device = await connect(id, secret);
    device.burst([{ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: `devices/${id}/down/#`, qos: 1 }] }]);
    await waitUntil(() => device.packets.some((p) => p.cmd === "suback"));
    await waitUntil(() => tb.broker.isOnline(id));
    device.burst([
      { ...publishPacket(`devices/${id}/up/telemetry`, cbor.encodeUp("telemetry", { r: { n: 1 } }), 9), qos: 2 },
    ]);
    await waitUntil(() => device.packets.some((p) => p.cmd === "pubrec"));
    return device;
  }

  /** Removes the device as `DELETE /api/devices/:id` does and provisions it again; resolves with the new secret. */
  async function removeAndAddAgain(id: string): Promise<string> {
    tb.broker.endSessions(id, "removed");
    assert.equal(tb.registry.remove(id), true);
    return tb.addDevice(id, "cbor");
  }

  /** A new device under `id`: a clean start, no old subscription delivering, its QoS 2 message 9 taken as new. */
  async function assertStartsClean(id: string, secret: string): Promise<void> {
    const fresh = await connect(id, secret);
    try {
      assert.equal(sessionPresent(fresh), false, "no session of the removed device");
      await waitUntil(() => tb.broker.isOnline(id));
      const delivered = tb.host.deliveries(id).length;
      // A retransmission (DUP) of packet id 9: the broker asks aedes' store whether it has it already.
      const again = { ...publishPacket(`devices/${id}/up/telemetry`, cbor.encodeUp("telemetry", { r: { n: 2 } }), 9) };
      fresh.burst([{ ...again, qos: 2, dup: true }]);
      await waitUntil(() => fresh.packets.some((p) => p.cmd === "pubrec"));
      assert.equal(tb.host.deliveries(id).length, delivered + 1, "the old device's QoS 2 message is forgotten");
      tb.host.transportOf(id).send({ channel: "cmd", frame: { id: "c1", n: "blink" } }, { qos: 1 });
      await pause(100);
      assert.deepEqual(
        fresh.packets.filter((p) => p.cmd === "publish"),
        [],
        "no subscription of the removed device delivers",
      );
    } finally {
      fresh.socket.destroy();
      await waitUntil(() => !tb.broker.isOnline(id));
    }
  }

  test("is resumed when the device is not removed (the fixture leaves one)", async () => {
    const id = "kept";
    const secret = await tb.addDevice(id, "cbor");
    const device = await leaveSession(id, secret);
    device.socket.destroy();
    await waitUntil(() => !tb.broker.isOnline(id));
    const back = await connect(id, secret);
    assert.equal(sessionPresent(back), true);
    back.socket.destroy();
  });

  test("removed while offline: the next device under its id starts clean", async () => {
    const id = "gone-offline";
    const device = await leaveSession(id, await tb.addDevice(id, "cbor"));
    device.socket.destroy();
    await tb.host.waitFor(() => tb.host.closes(id).length === 1);
    await waitUntil(() => !tb.broker.isOnline(id));
    await assertStartsClean(id, await removeAndAddAgain(id));
  });

  test("removed while online (its session ended as removed): the next device under its id starts clean", async () => {
    const id = "gone-online";
    const device = await leaveSession(id, await tb.addDevice(id, "cbor"));
    const secret = await removeAndAddAgain(id);
    await tb.host.waitFor(() => tb.host.closes(id).length === 1);
    assert.equal(tb.host.closes(id)[0]?.reason, "removed");
    await device.closed;
    await assertStartsClean(id, secret);
  });

  test("removed while its agent applies a QoS 2 message: the late answer is not stored for the next device", async () => {
    const id = "gone-while-applying";
    const secret = await tb.addDevice(id, "cbor");
    const device = await connect(id, secret);
    await waitUntil(() => tb.broker.isOnline(id));
    // The agent is busy: message 9 is applied only after the session ended and the removal dropped the session.
    tb.host.hold = true;
    device.burst([
      { ...publishPacket(`devices/${id}/up/telemetry`, cbor.encodeUp("telemetry", { r: { n: 1 } }), 9), qos: 2 },
    ]);
    await waitUntil(() => tb.host.deliveries(id).length === 1);
    const fresh = await removeAndAddAgain(id);
    await tb.host.waitFor(() => tb.host.closes(id).length === 1);
    await device.closed;
    tb.host.release();
    // The applied message's answer goes to aedes on the loop's check phase (hooks/publish.ts): let it pass.
    await pause(50);
    await assertStartsClean(id, fresh);
  });
});
