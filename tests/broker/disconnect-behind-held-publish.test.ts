import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type mqttPacket from "mqtt-packet";
import { END_HAND_OVER_WAIT_MS } from "../../broker/sessions.ts";
import { getCodec } from "../../codecs/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { connectRaw, publishPacket, type RawDevice, startTestBroker, type TestBroker, waitUntil } from "./helpers.ts";

const cbor = getCodec("cbor");
const telemetry = (id: string, n: number, messageId: number, qos: 0 | 1 = 1): mqttPacket.IPublishPacket => ({
  ...publishPacket(`devices/${id}/up/telemetry`, cbor.encodeUp("telemetry", { r: { n } }), messageId),
  qos,
});

/** What the agent of `id` was told after the open: its messages' frames and the close, in order. */
const heard = (tb: TestBroker, id: string) =>
  tb.host.events
    .filter((e) => e.agentId === id && e.type !== "open")
    .map((e) => (e.type === "deliver" ? e.message.frame : e.type === "close" ? `close:${e.reason}` : e.type));

/** A device online on a broker whose host reports its agent's mailbox full. */
async function heldDevice(id: string, clock?: ManualClock): Promise<{ tb: TestBroker; device: RawDevice }> {
  const tb = await startTestBroker(clock === undefined ? {} : { clock });
  const secret = await tb.addDevice(id);
  const device = await connectRaw(tb.port, { clientId: id, username: id, password: Buffer.from(secret) });
  await waitUntil(() => tb.broker.isOnline(id));
  tb.host.setMailboxFull(true);
  return { tb, device };
}

describe("a session that ends while PUBLISHes it sent wait for room in the agent's mailbox", () => {
  test("a DISCONNECT behind them: they still reach the agent, in order, before the session's close", async () => {
    const { tb, device } = await heldDevice("bye");
    try {
      // One write, so aedes reads the three packets together and handles the DISCONNECT before the mailbox has room.
      device.burst([telemetry("bye", 1, 1), telemetry("bye", 2, 0, 0), { cmd: "disconnect" }]);
      await device.closed;
      await waitUntil(() => tb.host.fullRefusals > 0);
      // Offline at once, though the agent hears of the end only after the messages.
      await waitUntil(() => !tb.broker.isOnline("bye"));
      assert.deepEqual(heard(tb, "bye"), []);
      tb.host.setMailboxFull(false);
      await tb.host.waitFor(() => tb.host.closes("bye").length === 1);
      assert.deepEqual(heard(tb, "bye"), [{ r: { n: 1 } }, { r: { n: 2 } }, "close:disconnect"]);
      assert.equal(tb.broker.stats().connectionsClosed.disconnect, 1);
    } finally {
      await tb.close();
    }
  });

  test("a DISCONNECT sent later, while the broker holds the session's reads, is read after the PUBLISHes", async () => {
    const { tb, device } = await heldDevice("later");
    try {
      device.burst([telemetry("later", 1, 1)]);
      await waitUntil(() => tb.host.fullRefusals > 0);
      device.burst([telemetry("later", 2, 2), { cmd: "disconnect" }]);
      device.socket.end();
      await new Promise((resolve) => setTimeout(resolve, 50));
      // Unread behind the held PUBLISH, in order: the session is still on.
      assert.equal(tb.broker.isOnline("later"), true);
      tb.host.setMailboxFull(false);
      await tb.host.waitFor(() => tb.host.closes("later").length === 1);
      assert.deepEqual(heard(tb, "later"), [{ r: { n: 1 } }, { r: { n: 2 } }, "close:disconnect"]);
    } finally {
      await tb.close();
    }
  });

  test("a reset: what the broker had read reaches the agent before the session's close", async () => {
    const { tb, device } = await heldDevice("cut");
    try {
      device.burst([telemetry("cut", 1, 1), telemetry("cut", 2, 2)]);
      await waitUntil(() => tb.host.fullRefusals > 0);
      device.socket.resetAndDestroy();
      await waitUntil(() => !tb.broker.isOnline("cut"));
      tb.host.setMailboxFull(false);
      await tb.host.waitFor(() => tb.host.closes("cut").length === 1);
      assert.deepEqual(heard(tb, "cut"), [{ r: { n: 1 } }, { r: { n: 2 } }, "close:error"]);
    } finally {
      await tb.close();
    }
  });

  test("the close waits for room at most END_HAND_OVER_WAIT_MS; what is still waiting then is dropped, and logged", async () => {
    const clock = new ManualClock();
    const { tb, device } = await heldDevice("stuck", clock);
    try {
      device.burst([telemetry("stuck", 1, 1), { cmd: "disconnect" }]);
      await device.closed;
      await waitUntil(() => !tb.broker.isOnline("stuck"));
      await clock.advance(END_HAND_OVER_WAIT_MS - 1);
      assert.equal(tb.host.closes("stuck").length, 0);
      await clock.advance(1);
      await tb.host.waitFor(() => tb.host.closes("stuck").length === 1);
      assert.deepEqual(heard(tb, "stuck"), ["close:disconnect"]);
      assert.ok(tb.logger.lines.some((l) => l.level === "warn" && l.obj.device === "stuck" && l.obj.dropped === 1));
      // Room after the close: the message is not handed over behind it (the agent let the connection go).
      tb.host.setMailboxFull(false);
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.deepEqual(heard(tb, "stuck"), ["close:disconnect"]);
    } finally {
      tb.host.setMailboxFull(false);
      await tb.close();
    }
  });

  test("a session held when its connection ends leaves no timer behind, even while its message still waits", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({ clock });
    try {
      const secret = await tb.addDevice("gone");
      // A long keepalive: the broker refreshes aedes' timer every 45 s while it holds the session, on the wall clock as
      // aedes' timer runs (not on this clock); that the refresh ends with the connection is read-pacer-keepalive.test.ts.
      const device = await connectRaw(tb.port, {
        clientId: "gone",
        username: "gone",
        password: Buffer.from(secret),
        keepalive: 60,
      });
      await waitUntil(() => tb.broker.isOnline("gone"));
      const idle = clock.pending;
      tb.host.setMailboxFull(true);
      device.burst([telemetry("gone", 1, 1)]);
      await waitUntil(() => tb.host.fullRefusals > 0);
      device.socket.resetAndDestroy();
      await waitUntil(() => !tb.broker.isOnline("gone"));
      // The session's end gives up on the message after END_HAND_OVER_WAIT_MS; the mailbox stays full, so the session
      // stays held, and no timer of it (holding the session's stream and client) may outlive it.
      await clock.advance(END_HAND_OVER_WAIT_MS);
      await tb.host.waitFor(() => tb.host.closes("gone").length === 1);
      assert.equal(clock.pending, idle);
    } finally {
      tb.host.setMailboxFull(false);
      await tb.close();
    }
  });
});
