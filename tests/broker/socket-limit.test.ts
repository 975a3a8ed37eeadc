/**
 * A TCP or TLS listener that holds its most sockets closes more as they arrive; each one it refuses is counted under
 * BRIDGE_ERR_SOCKET_LIMIT and warned about at most once per 10 s, as the WebSocket endpoint's refusals are.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { describe, test } from "node:test";
import { socketsPerListener } from "../../broker/listener-bound.ts";
import { BrokerErrorCode } from "../../broker/index.ts";
import { THROTTLED_WARNING_INTERVAL_MS } from "../../broker/throttled-warning.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { startTestBroker, type TestBroker } from "./helpers.ts";
import { fixtureTlsMaterial } from "./tls-material.ts";

/** Opens a plain TCP socket that never sends anything (for TLS: not even a ClientHello); resolves once connected. */
async function openIdle(port: number): Promise<net.Socket> {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => {});
  await new Promise((resolve) => socket.once("connect", resolve));
  return socket;
}

/** Opens one more socket and resolves true when the server closes it at once, false if it is still open after 2 s. */
async function closedOnArrival(port: number): Promise<boolean> {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => {});
  // Well before connectTimeoutMs, which would close an accepted socket that never sends CONNECT.
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 2000);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  socket.destroy();
  return closed;
}

const listeners: Array<{
  kind: "tcp" | "tls";
  message: string;
  start: (clock: ManualClock) => Promise<TestBroker>;
  port: (tb: TestBroker) => number;
}> = [
  {
    kind: "tcp",
    message: "MQTT over TCP socket limit reached; sockets closed as they arrive",
    start: (clock) => startTestBroker({ clock, limits: { maxConnections: 1 } }),
    port: (tb) => tb.port,
  },
  {
    kind: "tls",
    message: "MQTT over TLS socket limit reached; sockets closed as they arrive",
    start: (clock) =>
      startTestBroker({
        clock,
        limits: { maxConnections: 1 },
        tcp: false,
        tls: {
          host: "127.0.0.1",
          port: 0,
          ...fixtureTlsMaterial(),
        },
      }),
    port: (tb) => tb.broker.addresses().tls?.port ?? 0,
  },
];

describe("socket limit of the TCP and TLS listeners", () => {
  for (const listener of listeners) {
    test(`a socket refused by a full ${listener.kind} listener is counted and warned about at most once per 10 s`, async () => {
      const clock = new ManualClock();
      const tb = await listener.start(clock);
      const port = listener.port(tb);
      const idle: net.Socket[] = [];
      try {
        const max = socketsPerListener(1);
        // Sockets that never send CONNECT, as a flood would open them.
        for (let i = 0; i < max; i++) idle.push(await openIdle(port));
        assert.ok(await closedOnArrival(port), "the first socket over the bound is closed by the server");
        assert.ok(await closedOnArrival(port), "and so is the next");
        const refusals = () => tb.broker.stats().limitBreaches[BrokerErrorCode.socketLimit];
        const warnings = () => tb.logger.lines.filter((l) => l.msg === listener.message);
        assert.equal(refusals(), 2);
        assert.deepEqual(
          warnings().map((l) => [l.level, l.obj]),
          [["warn", { transport: listener.kind, remoteAddress: "127.0.0.1", max, count: 1 }]],
          "one line for the first refusal; the second, within 10 s, is only counted",
        );
        clock.advanceSync(THROTTLED_WARNING_INTERVAL_MS);
        assert.ok(await closedOnArrival(port));
        assert.equal(refusals(), 3);
        assert.equal(warnings().length, 2);
        assert.equal(warnings()[1].obj.count, 2, "the next line says how many were refused since the last one");
      } finally {
        for (const socket of idle) socket.destroy();
        await tb.close();
      }
    });
  }
});
