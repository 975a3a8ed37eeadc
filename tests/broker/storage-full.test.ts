/**
 * Acknowledged means stored: when the agent's database is at its cap, a telemetry message that could not be stored
 * gets no PUBACK; the device gets a `down/error` in its codec and the session ends so it sends the message again later.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type mqttPacket from "mqtt-packet";
import { getCodec } from "../../codecs/index.ts";
import { connectRaw, publishPacket, waitUntil } from "./helpers.ts";
import { type RuntimeBroker, startRuntimeBroker } from "./runtime-broker.ts";

const cbor = getCodec("cbor");

describe("an agent whose storage is full", () => {
  let rb: RuntimeBroker;
  before(async () => {
    // A DeviceAgent needs some room to open; a few dozen large readings fill the rest.
    rb = await startRuntimeBroker({ maxDatabaseBytes: 256 * 1024 });
  });
  after(async () => {
    await rb.close();
  });

  test("does not acknowledge the telemetry it could not store, tells the device in CBOR and ends the session", async () => {
    const secret = await rb.addDevice("full-1", "cbor");
    const raw = await connectRaw(rb.port, { clientId: "full-1", username: "full-1", password: Buffer.from(secret) });
    const ofKind = (cmd: string): mqttPacket.Packet[] => raw.packets.filter((p) => p.cmd === cmd);
    let isClosed = false;
    void raw.closed.then(() => {
      isClosed = true;
    });
    try {
      raw.burst([{ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "devices/full-1/down/#", qos: 1 }] }]);
      await waitUntil(() => ofKind("suback").length === 1);
      const filler = "x".repeat(3000);
      let sent = 0;
      // One at a time: each waits for its PUBACK or for the session to end.
      for (let messageId = 2; messageId < 400 && !isClosed; messageId++) {
        const payload = cbor.encodeUp("telemetry", { r: { n: messageId, note: filler } });
        raw.burst([publishPacket("devices/full-1/up/telemetry", payload, messageId)]);
        sent++;
        await waitUntil(() => isClosed || ofKind("puback").some((p) => "messageId" in p && p.messageId === messageId));
      }
      assert.ok(isClosed, "the session ended once the database was full");
      const acked = ofKind("puback").map((p) => ("messageId" in p ? p.messageId : -1));
      assert.equal(acked.length, sent - 1, "every message but the last was acknowledged");
      assert.ok(acked.length > 0, "some messages fitted before the cap");

      const errors = ofKind("publish")
        .filter((p) => p.cmd === "publish" && p.topic === "devices/full-1/down/error")
        .map((p) => (p.cmd === "publish" ? cbor.decodeDown("error", p.payload as Buffer) : undefined));
      assert.equal(errors.length, 1);
      const error = errors[0];
      assert.ok(error?.ok, "the error frame is CBOR");
      assert.equal(error.frame.code, "BRIDGE_ERR_STORAGE_FULL");

      // What was acknowledged is stored, and nothing else.
      const stored = await rb.runtime.call("full-1", "queryTelemetry", [{ metric: "n", limit: 10000 }]);
      assert.ok(stored.ok);
      const ns = (stored.value as Array<{ metric: string; value: unknown }>).map((r) => Number(r.value));
      assert.deepEqual(
        ns.sort((a, b) => a - b),
        acked,
        "the stored readings are exactly the acknowledged messages",
      );
    } finally {
      raw.socket.destroy();
    }
  });
});
