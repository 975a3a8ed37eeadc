/**
 * A takeover gives up the old session's up messages still waiting for room in a stuck agent's mailbox
 * (END_HAND_OVER_WAIT_MS), then tells the agent of the old session's end, which a stuck agent answers late. Those
 * given-up messages are not acknowledged, and the old connection ends as a takeover does: quietly (an MQTT WebSocket
 * with 1000), not cut with an error as if the device had broken the protocol (1008 `MQTT protocol error`) and logged
 * as a `device session error`.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import mqttPacket from "mqtt-packet";
import type { CloseReason, EventResult } from "../../agents/host.ts";
import { END_HAND_OVER_WAIT_MS } from "../../broker/sessions.ts";
import { getCodec } from "../../codecs/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import {
  connectPacket,
  connectRaw,
  publishPacket,
  RecordingHost,
  serveUpgrades,
  startTestBroker,
  waitUntil,
} from "./helpers.ts";
import { rawWebSocket } from "./raw-websocket.ts";

const cbor = getCodec("cbor");

/** An agent stuck on its events: it takes a session's close only once the test lets it. */
class LateCloseHost extends RecordingHost {
  #waiting: Array<() => void> = [];
  closeLate = false;
  override close(agentId: string, connectionId: string, reason: CloseReason): Promise<EventResult> {
    if (!this.closeLate) return super.close(agentId, connectionId, reason);
    return new Promise((resolve) => this.#waiting.push(() => resolve(super.close(agentId, connectionId, reason))));
  }
  releaseCloses(): void {
    this.closeLate = false;
    for (const release of this.#waiting.splice(0)) release();
  }
}

test("a takeover's old connection whose waiting messages were given up ends as a takeover, not with an error", async () => {
  const clock = new ManualClock();
  const host = new LateCloseHost();
  const tb = await startTestBroker({ clock, host });
  const server = await serveUpgrades(tb.broker);
  const ws = await rawWebSocket(server.port);
  try {
    const secret = await tb.addDevice("taken");
    ws.send(connectPacket("taken", secret));
    await waitUntil(() => tb.broker.isOnline("taken"));
    host.setMailboxFull(true);
    host.closeLate = true;
    ws.send(
      mqttPacket.generate(publishPacket("devices/taken/up/telemetry", cbor.encodeUp("telemetry", { r: { n: 1 } }), 1)),
    );
    await waitUntil(() => host.fullRefusals > 0);

    // The device connects again (over TCP): the old session's waiting message is given up at the deadline.
    const timers = clock.pending;
    const again = connectRaw(tb.port, { clientId: "taken", username: "taken", password: Buffer.from(secret) });
    // Settled in the test's own path; a failure before then must not leave it rejecting unheard.
    again.catch(() => {});
    // The takeover waits for the old session's hand-over, bounded on the broker's clock.
    await waitUntil(() => clock.pending > timers);
    await clock.advance(END_HAND_OVER_WAIT_MS);
    await waitUntil(() => ws.closeCode() !== undefined);

    assert.equal(ws.closeCode(), 1000, "ended as a takeover ends");
    assert.ok(!ws.packets.some((p) => p.cmd === "puback"), "the given-up message is not acknowledged");
    assert.deepEqual(
      tb.logger.lines.filter((l) => l.msg === "device session error").map((l) => l.obj),
      [],
      "no session error for the messages the broker gave up itself",
    );

    host.releaseCloses();
    const device = await again;
    assert.equal((device.packets[0] as mqttPacket.IConnackPacket).returnCode, 0);
    await host.waitFor(() => host.closes("taken").length === 1);
    assert.deepEqual(
      host.closes("taken").map((c) => c.reason),
      ["takeover"],
    );
    assert.equal(host.deliveries("taken").length, 0, "nothing handed over behind the close");
    device.socket.destroy();
  } finally {
    host.setMailboxFull(false);
    host.releaseCloses();
    ws.destroy();
    await tb.close();
    await server.close();
  }
});
