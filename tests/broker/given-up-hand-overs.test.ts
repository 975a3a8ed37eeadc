/**
 * Up messages that still wait for room in a stuck agent's mailbox when their session's end gives them up
 * (END_HAND_OVER_WAIT_MS) are dropped then, unacknowledged: the broker lets go of them at once, not once the mailbox
 * has room, which a stuck agent may never have. A device reconnecting again and again while its agent is stuck would
 * otherwise leave the messages (and the ended session) of every connection in memory.
 */
import assert from "node:assert/strict";
import v8 from "node:v8";
import vm from "node:vm";
import { test } from "node:test";
import type { DeliverOutcome, InboundMessage } from "../../agents/host.ts";
import { END_HAND_OVER_WAIT_MS } from "../../broker/sessions.ts";
import { getCodec } from "../../codecs/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { connectRaw, publishPacket, RecordingHost, startTestBroker, waitUntil } from "./helpers.ts";

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

const cbor = getCodec("cbor");

/** Keeps a weak reference to each message it refuses for a full mailbox: whether the broker still holds it. */
class WeakRefHost extends RecordingHost {
  readonly refused: Array<WeakRef<InboundMessage>> = [];
  override deliver(agentId: string, connectionId: string, message: InboundMessage): DeliverOutcome {
    const outcome = super.deliver(agentId, connectionId, message);
    if (!outcome.accepted) this.refused.push(new WeakRef(message));
    return outcome;
  }
}

/** Full collections on a fresh turn: a WeakRef dereferenced in the current one stays alive until it ends. */
async function collected(refs: Array<WeakRef<object>>): Promise<number> {
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  gc();
  await new Promise((resolve) => setImmediate(resolve));
  return refs.filter((r) => r.deref() === undefined).length;
}

test("messages given up at the end of their session are let go at once, though the mailbox never gets room", async () => {
  const clock = new ManualClock();
  const host = new WeakRefHost();
  const tb = await startTestBroker({ clock, host });
  try {
    const secret = await tb.addDevice("stuck");
    const device = await connectRaw(tb.port, { clientId: "stuck", username: "stuck", password: Buffer.from(secret) });
    await waitUntil(() => tb.broker.isOnline("stuck"));
    host.setMailboxFull(true);
    const telemetry = (n: number) =>
      publishPacket("devices/stuck/up/telemetry", cbor.encodeUp("telemetry", { r: { n } }), n);
    device.burst([telemetry(1), telemetry(2), { cmd: "disconnect" }]);
    await device.closed;
    await waitUntil(() => host.refused.length > 0 && !tb.broker.isOnline("stuck"));
    assert.equal(await collected(host.refused), 0, "held while the session's end waits for room");

    await clock.advance(END_HAND_OVER_WAIT_MS);
    await host.waitFor(() => host.closes("stuck").length === 1);
    assert.ok(tb.logger.lines.some((l) => l.level === "warn" && l.obj.device === "stuck" && l.obj.dropped === 2));
    assert.equal(await collected(host.refused), host.refused.length, "dropped once given up, with no room yet");
    // Room later: nothing is handed over behind the close.
    host.setMailboxFull(false);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(host.deliveries("stuck").length, 0);
  } finally {
    host.setMailboxFull(false);
    await tb.close();
  }
});
