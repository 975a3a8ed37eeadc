/**
 * Frames held for a topic the device had not subscribed to yet leave before any frame the agent sends on that topic
 * later: the session's filters are granted when aedes authorizes a SUBSCRIBE, but the held frames are released only
 * once the SUBACK is written, a turn of the event loop later.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { DeliverOutcome, InboundMessage } from "../../agents/host.ts";
import { getCodec } from "../../codecs/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { connectRaw, RecordingHost, startTestBroker, waitUntil } from "./helpers.ts";

const cbor = getCodec("cbor");

/** Sends a command of its own from inside `deliver`, as an agent answering a message may, before the SUBACK left. */
class AnsweringHost extends RecordingHost {
  override deliver(agentId: string, connectionId: string, message: InboundMessage): DeliverOutcome {
    this.transports.get(connectionId)?.send({ channel: "cmd", frame: { id: "c2", n: "second" } }, { qos: 0 });
    return super.deliver(agentId, connectionId, message);
  }
}

test("a frame sent while the device's SUBSCRIBE is being granted follows the frames held for that topic", async () => {
  const tb = await startTestBroker({ host: new AnsweringHost(), clock: new ManualClock(), subscribeGraceMs: 5000 });
  try {
    const secret = await tb.addDevice("held", "cbor");
    // Queued while the session opens, held until the device subscribes.
    tb.host.onOpen = (init) => init.transport.send({ channel: "cmd", frame: { id: "c1", n: "first" } }, { qos: 0 });
    const raw = await connectRaw(tb.port, { clientId: "held", username: "held", password: Buffer.from(secret) });
    try {
      // A device that subscribes and publishes at once, without waiting for its SUBACK.
      raw.burst([
        { cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "devices/held/down/cmd", qos: 0 }] },
        {
          cmd: "publish",
          topic: "devices/held/up/telemetry",
          payload: Buffer.from(cbor.encodeUp("telemetry", { r: { t: 1 } })),
          qos: 0,
          dup: false,
          retain: false,
        },
      ]);
      const commands = () => raw.packets.filter((p) => p.cmd === "publish");
      await waitUntil(() => commands().length === 2);
      const ids = commands().map((p) => {
        const decoded = cbor.decodeDown("cmd", (p as { payload: Buffer }).payload);
        return decoded.ok ? decoded.frame.id : decoded.code;
      });
      assert.deepEqual(ids, ["c1", "c2"]);
    } finally {
      raw.socket.destroy();
    }
  } finally {
    await tb.close();
  }
});
