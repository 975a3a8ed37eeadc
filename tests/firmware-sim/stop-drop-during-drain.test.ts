/**
 * A connection lost during the stop's drain is not the broker gone: the device reconnects after its backoff and
 * drains through the new connection. The stop ends the drain early only when no connection can come back (the
 * reconnects are refused), not at the moment a drop leaves none open.
 */
import assert from "node:assert/strict";
import type { Duplex } from "node:stream";
import { test } from "node:test";
import { createFleet, seededRandom } from "../../firmware-sim/index.ts";
import { acknowledge, scriptedSocket } from "./helpers/scripted-socket.ts";
import { waitUntil } from "./helpers/wait.ts";

test("a device whose connection drops during the stop's drain reconnects and drains, nothing undelivered", async () => {
  const sockets: Duplex[] = [];
  const fleet = createFleet({
    url: "mqtt://127.0.0.1:1",
    devices: 1,
    rate: 50,
    backoff: { baseDelayMs: 50, maxDelayMs: 100 },
    random: seededRandom(3),
    drainTimeoutMs: 5000,
    socketFactory: () => {
      const first = sockets.length === 0;
      // The first connection's broker takes telemetry without acknowledging it; the next one acknowledges everything.
      const socket = scriptedSocket((packet, broker) => {
        if (first && packet.cmd === "publish" && packet.topic.includes("/up/telemetry")) return;
        acknowledge(packet, broker);
      });
      sockets.push(socket);
      return socket;
    },
  });
  await fleet.start();
  assert.ok(await fleet.whenOnline(1, 10_000), "the device came online");
  // Telemetry sent on the first connection, never acknowledged: the stop has something to drain.
  await waitUntil(() => fleet.stats().counters.telemetrySent > 0, "telemetry sent on the first connection");
  const stopping = fleet.stop();
  // The connection drops as the drain begins (a network loss, a broker restarting).
  sockets[0].destroy();
  const report = await stopping;
  assert.ok(sockets.length >= 2, "the device reconnected during the drain");
  assert.equal(report.undelivered, 0, "what was owed drained through the new connection");
});
