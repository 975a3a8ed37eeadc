/**
 * stop() waits for devices to drain only while a drain can happen: when no connection is open (the broker was never
 * reachable, or it went away), the report comes at once instead of after the drain timeouts.
 */
import assert from "node:assert/strict";
import net from "node:net";
import type { Duplex } from "node:stream";
import { test } from "node:test";
import { createFleet, seededRandom } from "../../firmware-sim/index.ts";
import { acknowledge, scriptedSocket } from "./helpers/scripted-socket.ts";
import { waitUntil } from "./helpers/wait.ts";

/** A loopback port nothing listens on: connections to it are refused. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test("a fleet that never reached the broker stops at once and still reports what it could not deliver", async () => {
  const fleet = createFleet({
    url: `mqtt://127.0.0.1:${await closedPort()}`,
    devices: 3,
    rate: 50,
    backoff: { baseDelayMs: 50, maxDelayMs: 100 },
    random: seededRandom(1),
    drainTimeoutMs: 5000,
  });
  void fleet.start();
  await waitUntil(() => fleet.stats().counters.connectErrors >= 3, "three refused connection attempts");
  await waitUntil(() => fleet.stats().counters.buffered > 0, "telemetry queued while offline");
  const started = performance.now();
  const report = await fleet.stop();
  const tookMs = performance.now() - started;
  assert.ok(tookMs < 1500, `stop took ${Math.round(tookMs)} ms with no connection to drain through`);
  assert.ok(report.undelivered > 0, "the telemetry queued while offline is reported as undelivered");
  assert.equal(report.stats.counters.connects, 0);
});

test("a fleet whose broker went away stops once its reconnect attempts fail, without waiting out the drain", async () => {
  let brokerUp = true;
  const sockets: Duplex[] = [];
  const fleet = createFleet({
    url: "mqtt://127.0.0.1:1",
    devices: 2,
    rate: 50,
    backoff: { baseDelayMs: 50, maxDelayMs: 100 },
    random: seededRandom(2),
    drainTimeoutMs: 5000,
    socketFactory: () => {
      if (!brokerUp) throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
      // Connections are taken, but the broker dies before it acknowledges any telemetry.
      const socket = scriptedSocket((packet, broker) => {
        if (packet.cmd === "publish" && packet.topic.includes("/up/telemetry")) return;
        acknowledge(packet, broker);
      });
      sockets.push(socket);
      return socket;
    },
  });
  await fleet.start();
  assert.ok(await fleet.whenOnline(2, 10_000), "both devices came online");
  brokerUp = false;
  for (const socket of sockets) socket.destroy();
  await waitUntil(() => fleet.stats().online === 0, "both devices offline");
  const started = performance.now();
  const report = await fleet.stop();
  const tookMs = performance.now() - started;
  assert.ok(tookMs < 1500, `stop took ${Math.round(tookMs)} ms with the broker gone`);
  assert.ok(report.undelivered > 0);
});
