import assert from "node:assert/strict";
import { describe, test } from "node:test";
import mqttPacket from "mqtt-packet";
import { getCodec } from "../../codecs/index.ts";
import {
  connectRaw,
  publishPacket,
  type RawDevice,
  serveUpgrades,
  startTestBroker,
  type TestBroker,
  waitUntil,
} from "./helpers.ts";
import { connectPacket, rawWebSocket } from "./raw-websocket.ts";

const cbor = getCodec("cbor");
/** A generous rate limit: these devices send fast on purpose, and the rate limit is not under test. */
const FAST = { messagesPerSecond: 1_000_000, burstMessages: 1_000_000 };
const MESSAGES = 2000;

const telemetry = (id: string, n: number): mqttPacket.IPublishPacket =>
  publishPacket(`devices/${id}/up/telemetry`, cbor.encodeUp("telemetry", { r: { n } }), (n % 65_535) + 1);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Writes `count` PUBLISHes, one socket write each and a turn of the loop apart, so they reach the broker as many
 * chunks, as from a device that keeps sending; the kernel takes them whether or not the broker reads.
 */
async function keepSending(device: RawDevice, id: string, count: number): Promise<void> {
  for (let n = 1; n <= count; n++) {
    device.socket.write(mqttPacket.generate(telemetry(id, n)));
    if (n % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
}

async function onlineDevice(tb: TestBroker, id: string, keepalive = 30): Promise<RawDevice> {
  const secret = await tb.addDevice(id);
  const device = await connectRaw(tb.port, { clientId: id, username: id, password: Buffer.from(secret), keepalive });
  await waitUntil(() => tb.broker.isOnline(id));
  return device;
}

const pubacks = (device: RawDevice) => device.packets.filter((p) => p.cmd === "puback").length;

/** After the hold: every message reached the agent once, in order, and was acknowledged; nothing was cut. */
async function assertAllThrough(tb: TestBroker, device: RawDevice, id: string): Promise<void> {
  await waitUntil(() => pubacks(device) === MESSAGES, 20_000);
  assert.deepEqual(
    tb.host.deliveries(id).map((d) => d.message.frame),
    Array.from({ length: MESSAGES }, (_, i) => ({ r: { n: i + 1 } })),
  );
  assert.equal(device.socket.destroyed, false);
  assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_INFLIGHT_LIMIT ?? 0, 0);
}

describe("backpressure: a device that keeps sending while its agent is slow is slowed at its socket", () => {
  test("while its agent's mailbox is full, the broker reads no further than the read it was in", async () => {
    const tb = await startTestBroker({ limits: FAST });
    try {
      const device = await onlineDevice(tb, "flood-full");
      tb.host.setMailboxFull(true);
      await keepSending(device, "flood-full", MESSAGES);
      await sleep(100);
      // aedes read (and the broker holds in memory) only the first few; the rest waits in the socket.
      const read = tb.broker.stats().messagesIn;
      assert.ok(read < 50, `the broker read ${read} of ${MESSAGES} messages while the mailbox was full`);
      assert.equal(pubacks(device), 0);
      tb.host.setMailboxFull(false);
      await assertAllThrough(tb, device, "flood-full");
      device.socket.destroy();
    } finally {
      tb.host.setMailboxFull(false);
      await tb.close();
    }
  });

  test("while its agent is slow to commit, a lone device is held within its in-flight limit, not cut", async () => {
    const tb = await startTestBroker({ limits: FAST });
    try {
      const device = await onlineDevice(tb, "flood-slow");
      tb.host.hold = true;
      await keepSending(device, "flood-slow", MESSAGES);
      await sleep(100);
      // From half of maxInflightPerDevice (256) on, aedes reads nothing; one read never takes more than the limit.
      const read = tb.broker.stats().messagesIn;
      assert.ok(read >= 128 && read <= 256, `the broker read ${read} of ${MESSAGES} messages while commits waited`);
      assert.equal(device.socket.destroyed, false);
      tb.host.release();
      await assertAllThrough(tb, device, "flood-slow");
      device.socket.destroy();
    } finally {
      tb.host.release();
      await tb.close();
    }
  });

  test("over WebSocket too: one frame per PUBLISH, and the broker reads no further while the mailbox is full", async () => {
    const tb = await startTestBroker({ limits: FAST });
    const served = await serveUpgrades(tb.broker);
    try {
      const secret = await tb.addDevice("ws-flood");
      const ws = await rawWebSocket(served.port);
      ws.send(connectPacket("ws-flood", secret));
      await waitUntil(() => tb.broker.isOnline("ws-flood"));
      tb.host.setMailboxFull(true);
      for (let n = 1; n <= MESSAGES; n++) {
        ws.send(mqttPacket.generate(telemetry("ws-flood", n)));
        if (n % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      await sleep(100);
      const read = tb.broker.stats().messagesIn;
      assert.ok(read < 50, `the broker read ${read} of ${MESSAGES} messages while the mailbox was full`);
      tb.host.setMailboxFull(false);
      await waitUntil(() => ws.packets.filter((p) => p.cmd === "puback").length === MESSAGES, 20_000);
      assert.deepEqual(
        tb.host.deliveries("ws-flood").map((d) => d.message.frame),
        Array.from({ length: MESSAGES }, (_, i) => ({ r: { n: i + 1 } })),
      );
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_INFLIGHT_LIMIT ?? 0, 0);
      ws.destroy();
    } finally {
      tb.host.setMailboxFull(false);
      await tb.close();
      await served.close();
    }
  });

  test("a held device is not cut for a keepalive timeout: its PINGREQs wait behind its PUBLISHes", async () => {
    const tb = await startTestBroker({ limits: FAST });
    try {
      // keepalive 1 s: aedes ends a session that sends nothing it reads for 1.5 s.
      const device = await onlineDevice(tb, "patient", 1);
      tb.host.setMailboxFull(true);
      device.burst([telemetry("patient", 1)]);
      await waitUntil(() => tb.host.fullRefusals > 0);
      for (let i = 0; i < 8; i++) {
        device.burst([{ cmd: "pingreq" }]);
        await sleep(300);
      }
      assert.equal(device.socket.destroyed, false, "the session was cut while the bridge held it");
      // The aedes installed keeps its keepalive timer where the pacer looks for it.
      assert.ok(!tb.logger.lines.some((l) => l.msg.startsWith("aedes' keepalive timer is not where")));
      assert.equal(device.packets.filter((p) => p.cmd === "pingresp").length, 0);
      tb.host.setMailboxFull(false);
      await waitUntil(() => device.packets.filter((p) => p.cmd === "pingresp").length === 8);
      assert.equal(pubacks(device), 1);
      assert.equal(tb.broker.isOnline("patient"), true);
      device.socket.destroy();
    } finally {
      tb.host.setMailboxFull(false);
      await tb.close();
    }
  });
});
