/**
 * stop() ends every connection it opened, whatever the broker does: a device sends DISCONNECT and half-closes, and a
 * broker that stalls (it never answers, or never closes its side) must not keep sockets, and so the process, alive
 * after the report.
 */
import assert from "node:assert/strict";
import type { Duplex } from "node:stream";
import { describe, test } from "node:test";
import { createFleet } from "../../firmware-sim/index.ts";
import { acknowledge, scriptedSocket } from "./helpers/scripted-socket.ts";
import { waitUntil } from "./helpers/wait.ts";

describe("stop", () => {
  test("destroys a connection attempt the broker never answers", async () => {
    const sockets: Duplex[] = [];
    const fleet = createFleet({
      url: "mqtt://127.0.0.1:1",
      devices: 2,
      rate: 0,
      settleMs: 0,
      drainTimeoutMs: 0,
      socketFactory: () => {
        const socket = scriptedSocket(() => {});
        sockets.push(socket);
        return socket;
      },
    });
    void fleet.start();
    await waitUntil(() => sockets.length === 2, "two connection attempts");
    await fleet.stop();
    assert.deepStrictEqual(
      sockets.map((s) => s.destroyed),
      [true, true],
    );
  });

  test("destroys an online device's connection when the broker does not close it after DISCONNECT", async () => {
    const sockets: Duplex[] = [];
    const fleet = createFleet({
      url: "mqtt://127.0.0.1:1",
      devices: 1,
      rate: 0,
      settleMs: 0,
      drainTimeoutMs: 0,
      socketFactory: () => {
        // A stalled broker: it answers, but never acts on the DISCONNECT.
        const socket = scriptedSocket((packet, broker) => {
          if (packet.cmd !== "disconnect") acknowledge(packet, broker);
        });
        sockets.push(socket);
        return socket;
      },
    });
    await fleet.start();
    assert.ok(await fleet.whenOnline(1, 10_000), "the device came online");
    const report = await fleet.stop();
    assert.equal(sockets.length, 1);
    assert.equal(sockets[0].destroyed, true);
    assert.equal(report.stats.online, 0);
    assert.equal(report.violations, 0, JSON.stringify(report.violationDetails));
  });
});
