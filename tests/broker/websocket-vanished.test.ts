import assert from "node:assert/strict";
import { describe, test } from "node:test";
import mqttPacket from "mqtt-packet";
import { WEBSOCKET_CLOSE_TIMEOUT_MS } from "../../broker/listeners/websocket.ts";
import { END_HAND_OVER_WAIT_MS } from "../../broker/sessions.ts";
import { getCodec } from "../../codecs/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { connectPacket, publishPacket, serveUpgrades, startTestBroker, waitUntil } from "./helpers.ts";
import { type RawWebSocket, rawWebSocket } from "./raw-websocket.ts";

const cbor = getCodec("cbor");
const BURST = [1, 2, 3, 4, 5, 6, 7, 8];

const telemetry = (id: string, n: number, messageId: number): Buffer =>
  mqttPacket.generate(publishPacket(`devices/${id}/up/telemetry`, cbor.encodeUp("telemetry", { r: { n } }), messageId));

/**
 * A device online over WebSocket whose agent's mailbox is full, with aedes reading nothing more of its session: eight
 * PUBLISHes in one frame reach aedes in one read, the first waits for room in the mailbox, and the broker's read pacer
 * gives aedes nothing more meanwhile, so the ninth, in a frame of its own, stays unread in the stream. The broker's
 * clock stands still, so only what reaches aedes at once can end the session.
 */
async function deviceHeldByFullMailbox(id: string, options: { will?: boolean } = {}) {
  const clock = new ManualClock();
  const tb = await startTestBroker({ clock });
  const served = await serveUpgrades(tb.broker);
  const secret = await tb.addDevice(id);
  const ws = await rawWebSocket(served.port);
  ws.send(connectPacket(id, secret, options.will ? `devices/${id}/up/telemetry` : undefined));
  await waitUntil(() => tb.broker.isOnline(id));
  tb.host.setMailboxFull(true);
  ws.send(Buffer.concat(BURST.map((n) => telemetry(id, n, n))));
  await waitUntil(() => tb.host.fullRefusals > 0);
  ws.send(telemetry(id, BURST.length + 1, BURST.length + 1));
  // Time for the last frame to reach the server (loopback).
  await new Promise((resolve) => setTimeout(resolve, 20));
  return {
    clock,
    tb,
    ws,
    async close(): Promise<void> {
      ws.destroy();
      tb.host.setMailboxFull(false);
      await tb.close();
      await served.close();
    },
  };
}

const closeReasons = (ws: { tb: { host: { closes(id: string): Array<{ reason: string }> } } }, id: string) =>
  ws.tb.host.closes(id).map((c) => c.reason);

describe("an MQTT WebSocket client that is gone while aedes is not reading its session", () => {
  test("a reset ends its session at once, as a TCP reset does; what aedes had read still reaches the agent first", async () => {
    const held = await deviceHeldByFullMailbox("ws-reset");
    try {
      held.ws.reset();
      await waitUntil(() => !held.tb.broker.isOnline("ws-reset"), 1000);
      // The messages read before the reset were received in full: the agent gets them, then the close. The one
      // aedes had not read is dropped with the connection, unacknowledged.
      held.tb.host.setMailboxFull(false);
      await held.tb.host.waitFor(() => held.tb.host.closes("ws-reset").length === 1, 1000);
      assert.deepEqual(closeReasons(held, "ws-reset"), ["error"]);
      assert.deepEqual(
        held.tb.host.events
          .filter((e) => e.type !== "open")
          .map((e) => (e.type === "deliver" ? e.message.frame : e.type)),
        [...BURST.map((n) => ({ r: { n } })), "close"],
      );
    } finally {
      await held.close();
    }
  });

  test("a close ends its session within the close timeout even when aedes never reads again", async () => {
    const held = await deviceHeldByFullMailbox("ws-bye");
    try {
      await closeCleanly(held.ws);
      // What the client sent before its close frame gets the bound to be read; the mailbox stays full.
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(held.tb.broker.isOnline("ws-bye"), true);
      await held.clock.advance(WEBSOCKET_CLOSE_TIMEOUT_MS);
      await waitUntil(() => !held.tb.broker.isOnline("ws-bye"), 1000);
      // The agent is told once the messages aedes read get room in the mailbox, or after END_HAND_OVER_WAIT_MS.
      await held.clock.advance(END_HAND_OVER_WAIT_MS);
      await held.tb.host.waitFor(() => held.tb.host.closes("ws-bye").length === 1, 1000);
      assert.deepEqual(closeReasons(held, "ws-bye"), ["disconnect"]);
    } finally {
      await held.close();
    }
  });

  test("a close loses nothing the client sent before it when aedes reads it within the bound", async () => {
    const held = await deviceHeldByFullMailbox("ws-last", { will: true });
    try {
      held.ws.send(mqttPacket.generate({ cmd: "disconnect" }));
      await closeCleanly(held.ws);
      held.tb.host.setMailboxFull(false);
      await held.tb.host.waitFor(() => held.tb.host.closes("ws-last").length === 1, 1000);
      // Its DISCONNECT was read: the last will is not due.
      assert.deepEqual(closeReasons(held, "ws-last"), ["disconnect"]);
      // Every PUBLISH sent before the DISCONNECT reached the agent, before the close.
      assert.deepEqual(
        held.tb.host.events
          .filter((e) => e.type !== "open")
          .map((e) => (e.type === "deliver" ? e.message.frame : e.type)),
        [...[...BURST, BURST.length + 1].map((n) => ({ r: { n } })), "close"],
      );
    } finally {
      await held.close();
    }
  });
});

/** The client's side of a close handshake: its close frame, the server's answer, then the TCP connection closes. */
async function closeCleanly(ws: RawWebSocket): Promise<void> {
  ws.sendClose(1000);
  await waitUntil(() => ws.closeCode() !== undefined, 1000);
  ws.destroy();
  await ws.closed;
  // Time for the server to see its side closed too (loopback).
  await new Promise((resolve) => setTimeout(resolve, 20));
}
