/**
 * Two sessions of one device waiting to open (behind the close of an earlier one, held by a busy agent): the later
 * CONNECT takes over the earlier one, as MQTT asks ([MQTT-3.1.4-2]), never the other way round. The earlier one's open
 * closed the later session as a "takeover" and refused its CONNECT, so a device that gave up a stalled connection and
 * connected again was refused on its only live connection.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { test } from "node:test";
import type { CloseReason, EventResult } from "../../agents/host.ts";
import {
  closed,
  connectAttempt,
  connectDevice,
  connectPacket,
  endClient,
  RecordingHost,
  startTestBroker,
  waitUntil,
} from "./helpers.ts";

/** A host whose closes wait until the test lets them go, as an agent busy in a long event makes them wait. */
class SlowCloseHost extends RecordingHost {
  holdCloses = false;
  private waiting: Array<() => void> = [];
  override close(agentId: string, connectionId: string, reason: CloseReason): Promise<EventResult> {
    const answer = super.close(agentId, connectionId, reason);
    if (!this.holdCloses) return answer;
    return new Promise((resolve) => this.waiting.push(() => resolve(answer)));
  }
  releaseCloses(): void {
    this.holdCloses = false;
    for (const go of this.waiting.splice(0)) go();
  }
}

test("of two sessions of a device waiting to open, the later one takes over the earlier one", async () => {
  const host = new SlowCloseHost();
  const tb = await startTestBroker({ host });
  const sockets: net.Socket[] = [];
  try {
    const secret = await tb.addDevice("dev");
    const options = { clientId: "dev", username: "dev", password: secret };
    // Counts the registry reads of the device: an accepted CONNECT's second one comes right before its session is
    // listed (connect.ts), in the same tick.
    let reads = 0;
    const get = tb.registry.get.bind(tb.registry);
    tb.registry.get = (id) => {
      if (id === "dev") reads++;
      return get(id);
    };
    const first = await connectDevice(tb.url, options);
    host.holdCloses = true;
    await endClient(first);
    await waitUntil(() => host.closes("dev").length === 1);

    // The earlier attempt: its open waits behind the first session's close.
    const before = reads;
    const earlier = net.connect({ port: tb.port, host: "127.0.0.1" });
    sockets.push(earlier);
    earlier.on("error", () => {});
    earlier.write(connectPacket("dev", secret));
    await waitUntil(() => reads === before + 2);
    // The later one, the device's own: it connects while the earlier one still waits.
    const later = connectAttempt(tb.url, options);
    await waitUntil(() => reads === before + 4);
    host.releaseCloses();

    const { code, client } = await later;
    assert.equal(code, 0, "the later CONNECT is accepted");
    try {
      await waitUntil(() => earlier.destroyed || earlier.readableEnded);
      const opens = host.opens("dev").map((o) => o.connectionId);
      assert.equal(opens.length, 3);
      await waitUntil(() => host.closes("dev").length === 2);
      assert.deepEqual(
        host.closes("dev").map((c) => [c.connectionId, c.reason]),
        [
          [opens[0], "disconnect"],
          [opens[1], "takeover"],
        ],
      );
      assert.equal(tb.broker.isOnline("dev"), true);
    } finally {
      if (client !== undefined) {
        const gone = closed(client);
        await endClient(client);
        await gone;
      }
    }
  } finally {
    for (const s of sockets) s.destroy();
    await tb.close();
  }
});
