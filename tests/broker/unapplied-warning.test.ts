/**
 * A device whose agent cannot store its messages (its database is full) reconnects and sends the same message again
 * and again, and each attempt ends its session unacknowledged: the warning is logged at most once per 10 s per device
 * and code, with `count`, the attempts since its last line.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { getCodec } from "../../codecs/index.ts";
import { UNAPPLIED_WARNING } from "../../broker/uplink.ts";
import { THROTTLED_WARNING_INTERVAL_MS } from "../../broker/throttled-warning.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { connectRaw, publishPacket, startTestBroker, type TestBroker } from "./helpers.ts";

const cbor = getCodec("cbor");

/** One reconnect of `id`: a QoS 1 telemetry message its agent fails, and the session's end. */
async function attempt(tb: TestBroker, id: string, secret: string): Promise<void> {
  const raw = await connectRaw(tb.port, { clientId: id, username: id, password: Buffer.from(secret) });
  raw.burst([publishPacket(`devices/${id}/up/telemetry`, cbor.encodeUp("telemetry", { r: { n: 1 } }), 1)]);
  await raw.closed;
  assert.equal(
    raw.packets.some((p) => p.cmd === "puback"),
    false,
    "not acknowledged",
  );
}

test("a device whose database is full gets one 'up message not applied' warning per 10 s, with the count", async () => {
  const clock = new ManualClock();
  const tb = await startTestBroker({ clock });
  tb.host.deliverResult = { status: "failed", code: "BRIDGE_ERR_STORAGE_FULL", message: "database full" };
  const lines = (device: string) =>
    tb.logger.lines.filter((l) => l.msg === UNAPPLIED_WARNING && l.obj.device === device).map((l) => l.obj);
  try {
    const secret = await tb.addDevice("full-loop");
    const other = await tb.addDevice("full-other");
    for (let i = 0; i < 3; i++) await attempt(tb, "full-loop", secret);
    assert.deepEqual(lines("full-loop"), [{ device: "full-loop", code: "BRIDGE_ERR_STORAGE_FULL", count: 1 }]);
    // Another device has a line of its own at once.
    await attempt(tb, "full-other", other);
    assert.equal(lines("full-other").length, 1);

    await clock.advance(THROTTLED_WARNING_INTERVAL_MS);
    await attempt(tb, "full-loop", secret);
    // The two attempts not logged, and this one.
    assert.deepEqual(lines("full-loop").at(-1), { device: "full-loop", code: "BRIDGE_ERR_STORAGE_FULL", count: 3 });
    assert.equal(lines("full-loop").length, 2);
  } finally {
    await tb.close();
  }
});
