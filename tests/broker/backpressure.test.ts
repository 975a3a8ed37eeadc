import assert from "node:assert/strict";
import { describe, test } from "node:test";
import mqttPacket from "mqtt-packet";
import { getCodec } from "../../codecs/index.ts";
import {
  connectPacket,
  connectRaw,
  publishPacket,
  type RawDevice,
  serveUpgrades,
  startTestBroker,
  type TestBroker,
  waitUntil,
} from "./helpers.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { rawWebSocket } from "./raw-websocket.ts";

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
      // Reading stops once half of maxInflightPerDevice (256) was read; the wait after is for a read past the limit.
      await waitUntil(() => tb.broker.stats().messagesIn >= 128);
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

  test("a held device's keepalive is refreshed on the wall clock, as aedes' keepalive runs: a broker clock that stands still does not get it cut", async () => {
    const tb = await startTestBroker({ limits: FAST, clock: new ManualClock() });
    try {
      // keepalive 1 s: aedes ends a session that sends nothing it reads for 1.5 s of wall-clock time.
      const device = await onlineDevice(tb, "patient-manual-clock", 1);
      tb.host.setMailboxFull(true);
      device.burst([telemetry("patient-manual-clock", 1)]);
      await waitUntil(() => tb.host.fullRefusals > 0);
      await sleep(2400);
      assert.equal(device.socket.destroyed, false, "the session was cut while the bridge held it");
      tb.host.setMailboxFull(false);
      await waitUntil(() => pubacks(device) === 1);
      assert.equal(tb.broker.isOnline("patient-manual-clock"), true);
      device.socket.destroy();
    } finally {
      tb.host.setMailboxFull(false);
      await tb.close();
    }
  });

  test("a device writing in random pieces (single bytes, split headers) while its agent turns slow and fast gets every message through, once, in order", async () => {
    const tb = await startTestBroker({ limits: { ...FAST, maxInflightPerDevice: 16 } });
    try {
      const device = await onlineDevice(tb, "pieces");
      device.socket.setNoDelay(true);
      // A deterministic random source (mulberry32): the same pieces and the same slow and fast turns on every run.
      let state = 7;
      const random = (): number => {
        state = (state + 0x6d2b79f5) >>> 0;
        let t = Math.imul(state ^ (state >>> 15), state | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
      };
      const count = 1500;
      const parts: Buffer[] = [];
      let acked = 0;
      let pings = 0;
      for (let n = 1; n <= count; n++) {
        const qos = random() < 0.3 ? 0 : 1;
        if (qos === 1) acked++;
        parts.push(mqttPacket.generate({ ...telemetry("pieces", n), qos }));
        if (random() < 0.05) {
          parts.push(mqttPacket.generate({ cmd: "pingreq" }));
          pings++;
        }
        if (random() < 0.02) {
          const subscriptions = [{ topic: "devices/pieces/down/#", qos: 1 as const }];
          parts.push(mqttPacket.generate({ cmd: "subscribe", messageId: 1, subscriptions }));
        }
      }
      const stream = Buffer.concat(parts);
      for (let at = 0, writes = 0; at < stream.length; writes++) {
        const kind = random();
        const length = kind < 0.3 ? 1 : kind < 0.5 ? 2 + Math.floor(random() * 4) : 1 + Math.floor(random() * 3000);
        device.socket.write(stream.subarray(at, at + length));
        at += length;
        if (writes % 4 !== 3) continue;
        await new Promise((resolve) => setImmediate(resolve));
        const turn = random();
        if (turn < 0.1) tb.host.setMailboxFull(true);
        else if (turn < 0.25) tb.host.setMailboxFull(false);
        else if (turn < 0.3) tb.host.hold = true;
        else if (turn < 0.4) tb.host.release();
      }
      tb.host.setMailboxFull(false);
      tb.host.release();
      await waitUntil(
        () => pubacks(device) === acked && device.packets.filter((p) => p.cmd === "pingresp").length === pings,
        20_000,
      );
      assert.deepEqual(
        tb.host.deliveries("pieces").map((d) => d.message.frame),
        Array.from({ length: count }, (_, i) => ({ r: { n: i + 1 } })),
      );
      assert.equal(device.socket.destroyed, false);
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_INFLIGHT_LIMIT ?? 0, 0);
      // The turns did hold the device: messages waited for room.
      assert.ok(tb.host.fullRefusals > 0, `refusals ${tb.host.fullRefusals}`);
      device.socket.destroy();
    } finally {
      tb.host.setMailboxFull(false);
      tb.host.release();
      await tb.close();
    }
  });
});
