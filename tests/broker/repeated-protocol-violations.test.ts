/**
 * A client that reconnects in a loop and breaks the protocol each time (a packet only a server sends, a reserved packet
 * type, a malformed length, a packet over the size limit) is cut each time. Every cut is counted, exactly; the warning
 * is written at most once per source address (the one a PROXY protocol header names, behind a balancer) per interval,
 * with `count`, the cuts since its last line. Before, each connection wrote its own line, without bound.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import mqttPacket from "mqtt-packet";
import { CONNECTION_ERROR_LINE } from "../../broker/hooks/events.ts";
import { PACKET_TOO_LARGE_WARNING, PROTOCOL_VIOLATION_WARNING } from "../../broker/packet-refusals.ts";
import { THROTTLED_WARNING_INTERVAL_MS } from "../../broker/throttled-warning.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { cutAfter, serveUpgrades, startTestBroker, waitUntil, warned } from "./helpers.ts";
import { v1Header } from "./proxy-header-builders.ts";
import { rawWebSocket } from "./raw-websocket.ts";

const CONNACK = mqttPacket.generate({ cmd: "connack", returnCode: 0, sessionPresent: false });
/** The fixed header of a PUBLISH announcing 100 MB, and nothing else. */
const HUGE_PUBLISH_HEADER = Buffer.from([0x30, 0x80, 0x80, 0x80, 0x30]);

async function times(n: number, run: () => Promise<void>): Promise<void> {
  for (let i = 0; i < n; i++) await run();
}

describe("a client reconnecting into the same protocol violation", () => {
  test("a packet only a server sends over N connections: one warning per interval with the count, N counted", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({ clock });
    try {
      await times(5, () => cutAfter(tb.port, CONNACK));
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_PROTOCOL_VIOLATION, 5, "every violation counted");
      assert.deepEqual(warned(tb, PROTOCOL_VIOLATION_WARNING), [
        { remoteAddress: "127.0.0.1", device: undefined, packet: "CONNACK", count: 1 },
      ]);

      // Another address is not hidden behind the first one's line.
      await cutAfter(tb.port, CONNACK, "127.0.0.2");
      assert.equal(warned(tb, PROTOCOL_VIOLATION_WARNING).at(-1)?.remoteAddress, "127.0.0.2");
      assert.equal(warned(tb, PROTOCOL_VIOLATION_WARNING).length, 2);

      // After the interval: one line again, with the violations of that address since its last line.
      clock.advanceSync(THROTTLED_WARNING_INTERVAL_MS);
      await cutAfter(tb.port, CONNACK);
      assert.deepEqual(warned(tb, PROTOCOL_VIOLATION_WARNING).at(-1), {
        remoteAddress: "127.0.0.1",
        device: undefined,
        packet: "CONNACK",
        count: 5,
      });
      assert.equal(warned(tb, PROTOCOL_VIOLATION_WARNING).length, 3);
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_PROTOCOL_VIOLATION, 7);
    } finally {
      await tb.close();
    }
  });

  test("a packet over the size limit over N connections: one warning per interval with the count, N counted", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({ clock, limits: { maxPayloadBytes: 1024 } });
    try {
      await times(4, () => cutAfter(tb.port, HUGE_PUBLISH_HEADER));
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_PACKET_TOO_LARGE, 4);
      assert.equal(warned(tb, PACKET_TOO_LARGE_WARNING).length, 1);
      assert.equal(warned(tb, PACKET_TOO_LARGE_WARNING)[0].count, 1);
      clock.advanceSync(THROTTLED_WARNING_INTERVAL_MS);
      await cutAfter(tb.port, HUGE_PUBLISH_HEADER);
      assert.equal(warned(tb, PACKET_TOO_LARGE_WARNING).length, 2);
      assert.equal(warned(tb, PACKET_TOO_LARGE_WARNING)[1].count, 4);
    } finally {
      await tb.close();
    }
  });

  test("behind a balancer, the lines are kept per address its PROXY protocol header names", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({
      clock,
      tcp: { host: "127.0.0.1", port: 0, proxyProtocol: { trustedSources: ["127.0.0.1"] } },
    });
    try {
      await times(3, () => cutAfter(tb.port, Buffer.concat([v1Header("203.0.113.7"), CONNACK])));
      await times(2, () => cutAfter(tb.port, Buffer.concat([v1Header("203.0.113.8"), CONNACK])));
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_PROTOCOL_VIOLATION, 5);
      assert.deepEqual(
        warned(tb, PROTOCOL_VIOLATION_WARNING).map((w) => [w.remoteAddress, w.count]),
        [
          ["203.0.113.7", 1],
          ["203.0.113.8", 1],
        ],
      );
    } finally {
      await tb.close();
    }
  });

  test("over MQTT WebSocket, the same: one warning per address per interval, every violation counted", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({ clock, websocket: { path: "/mqtt" } });
    const server = await serveUpgrades(tb.broker);
    try {
      for (let i = 0; i < 3; i++) {
        const ws = await rawWebSocket(server.port);
        ws.send(CONNACK);
        // The broker's close frame says it cut the session; the test then drops the socket itself, so no close
        // handshake waits on the manual clock.
        await waitUntil(() => ws.closeCode() !== undefined);
        ws.destroy();
        await ws.closed;
      }
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_PROTOCOL_VIOLATION, 3);
      assert.deepEqual(warned(tb, PROTOCOL_VIOLATION_WARNING), [
        { remoteAddress: "127.0.0.1", device: undefined, packet: "CONNACK", count: 1 },
      ]);
      // Nor does aedes' report of the cut connection add a line of its own.
      assert.deepEqual(
        tb.logger.lines.filter((l) => l.msg === CONNECTION_ERROR_LINE),
        [],
      );
    } finally {
      await server.close();
      await tb.close();
    }
  });
});
