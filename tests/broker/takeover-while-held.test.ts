import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type mqttPacket from "mqtt-packet";
import { END_HAND_OVER_WAIT_MS } from "../../broker/sessions.ts";
import { getCodec } from "../../codecs/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { connectRaw, publishPacket, type RawDevice, startTestBroker, type TestBroker, waitUntil } from "./helpers.ts";

const cbor = getCodec("cbor");
const telemetry = (id: string, n: number, qos: 0 | 1): mqttPacket.IPublishPacket => ({
  ...publishPacket(`devices/${id}/up/telemetry`, cbor.encodeUp("telemetry", { r: { n } }), n),
  qos,
});

/** What the agent of `id` was told, in order: opens and closes by session (1 = first), and message numbers. */
function heard(tb: TestBroker, id: string): string[] {
  const sessions: string[] = [];
  const session = (connectionId: string): number => {
    if (!sessions.includes(connectionId)) sessions.push(connectionId);
    return sessions.indexOf(connectionId) + 1;
  };
  return tb.host.events
    .filter((e) => e.agentId === id)
    .map((e) =>
      e.type === "deliver"
        ? `${session(e.connectionId)}:${(e.message.frame as { r: { n: number } }).r.n}`
        : e.type === "close"
          ? `close ${session(e.connectionId)} ${e.reason}`
          : `open ${session(e.connectionId)}`,
    );
}

/**
 * A device online whose agent's mailbox is full: its first PUBLISH waits for room, so the broker reads nothing more of
 * the session, and what the device sends next stays unread in the connection.
 */
async function heldDevice(tb: TestBroker, id: string): Promise<{ device: RawDevice; secret: string }> {
  const secret = await tb.addDevice(id);
  const device = await connectRaw(tb.port, { clientId: id, username: id, password: Buffer.from(secret) });
  // What it sends next leaves at once, not when the broker acknowledges the last segment (Nagle).
  device.socket.setNoDelay(true);
  await waitUntil(() => tb.broker.isOnline(id));
  tb.host.setMailboxFull(true);
  device.burst([telemetry(id, 1, 1)]);
  await waitUntil(() => tb.host.fullRefusals > 0);
  return { device, secret };
}

describe("a takeover of a session the broker holds", () => {
  test("what the old connection sent before its DISCONNECT, unread then, reaches the agent before its close", async () => {
    const tb = await startTestBroker();
    try {
      const { device, secret } = await heldDevice(tb, "flush");
      // QoS 0: the device forgets these once written; a DISCONNECT, then the connection's end, as a client does.
      device.burst([telemetry("flush", 2, 0), telemetry("flush", 3, 0), { cmd: "disconnect" }]);
      device.socket.end();
      await new Promise((resolve) => setTimeout(resolve, 20));
      const again = connectRaw(tb.port, { clientId: "flush", username: "flush", password: Buffer.from(secret) });
      await new Promise((resolve) => setTimeout(resolve, 100));
      tb.host.setMailboxFull(false);
      const second = await again;
      await waitUntil(() => tb.host.opens("flush").length === 2);
      assert.deepEqual(heard(tb, "flush"), ["open 1", "1:1", "1:2", "1:3", "close 1 disconnect", "open 2"]);
      second.socket.destroy();
    } finally {
      tb.host.setMailboxFull(false);
      await tb.close();
    }
  });

  test("an old connection left open: what it had sent is read and handed over before the takeover closes it", async () => {
    const tb = await startTestBroker();
    try {
      const { device, secret } = await heldDevice(tb, "twice");
      device.burst([telemetry("twice", 2, 0)]);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const again = connectRaw(tb.port, { clientId: "twice", username: "twice", password: Buffer.from(secret) });
      await new Promise((resolve) => setTimeout(resolve, 100));
      tb.host.setMailboxFull(false);
      const second = await again;
      await waitUntil(() => tb.host.opens("twice").length === 2);
      assert.deepEqual(heard(tb, "twice"), ["open 1", "1:1", "1:2", "close 1 takeover", "open 2"]);
      await device.closed;
      second.socket.destroy();
    } finally {
      tb.host.setMailboxFull(false);
      await tb.close();
    }
  });

  test("an agent that stays busy delays the takeover at most END_HAND_OVER_WAIT_MS in all; the rest is dropped, and logged", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({ clock });
    try {
      const { device, secret } = await heldDevice(tb, "busy");
      device.burst([telemetry("busy", 2, 0)]);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const timers = clock.pending;
      const again = connectRaw(tb.port, { clientId: "busy", username: "busy", password: Buffer.from(secret) });
      // The takeover is waiting for the old connection to be read: its bound is the one timer it set.
      await waitUntil(() => clock.pending > timers);
      await clock.advance(END_HAND_OVER_WAIT_MS - 1);
      assert.deepEqual(heard(tb, "busy"), ["open 1"]);
      await clock.advance(1);
      await waitUntil(() => tb.host.opens("busy").length === 2);
      assert.deepEqual(heard(tb, "busy"), ["open 1", "close 1 takeover", "open 2"]);
      const warned = tb.logger.lines.filter((l) => l.level === "warn" && l.obj.device === "busy");
      assert.ok(warned.some((l) => (l.obj.unreadBytes as number) > 0));
      assert.ok(warned.some((l) => l.obj.dropped === 1));
      const second = await again;
      second.socket.destroy();
    } finally {
      tb.host.setMailboxFull(false);
      await tb.close();
    }
  });
});
