/**
 * The PROXY protocol on a TCP listener, as the listener keeps its sockets: a connection behind a header carries the
 * listener's own listeners once, like one accepted directly, and a listener that closes while connections still wait
 * for their header closes them without counting or logging them as refused.
 */
import assert from "node:assert/strict";
import net from "node:net";
import type { Duplex } from "node:stream";
import { describe, test } from "node:test";
import type { ProxyRefusal } from "../../broker/listeners/proxy-protocol/index.ts";
import { listenSockets, type SocketListener } from "../../broker/listeners/socket-listener.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { waitUntil } from "./helpers.ts";
import { v1Header } from "./proxy-header-builders.ts";

/** A TCP listener on 127.0.0.1:0, behind the PROXY protocol when `refusals` is given; `accepted` gets its streams. */
function listen(accepted: Duplex[], refusals?: ProxyRefusal[]): Promise<SocketListener> {
  return listenSockets({
    kind: "tcp",
    host: "127.0.0.1",
    port: 0,
    accept: (stream) => accepted.push(stream),
    proxyProtocol:
      refusals === undefined
        ? undefined
        : {
            trustedSources: ["127.0.0.1"],
            headerTimeoutMs: 60_000,
            clock: new ManualClock(),
            onRefused: (refusal) => refusals.push(refusal),
          },
  });
}

function connect(listener: SocketListener, first?: Buffer): net.Socket {
  const socket = net.connect(listener.address().port, "127.0.0.1");
  socket.on("error", () => {});
  if (first !== undefined) socket.write(first);
  return socket;
}

describe("a TCP listener behind the PROXY protocol", () => {
  test("registers its close and error listeners on a connection once, as on one accepted directly", async () => {
    const direct: Duplex[] = [];
    const proxied: Duplex[] = [];
    const plainListener = await listen(direct);
    const proxiedListener = await listen(proxied, []);
    const sockets = [connect(plainListener), connect(proxiedListener, v1Header("198.51.100.7"))];
    try {
      await waitUntil(() => direct.length === 1 && proxied.length === 1);
      for (const event of ["close", "error"] as const) {
        assert.equal(proxied[0]?.listenerCount(event), direct[0]?.listenerCount(event), `${event} listeners`);
      }
    } finally {
      for (const socket of sockets) socket.destroy();
      await Promise.all([plainListener.close(), proxiedListener.close()]);
    }
  });

  test("a peer that closes in the middle of its header is refused as incomplete", async () => {
    const refusals: ProxyRefusal[] = [];
    const listener = await listen([], refusals);
    try {
      connect(listener).end(v1Header("198.51.100.7").subarray(0, 10));
      await waitUntil(() => refusals.length === 1);
      assert.equal(refusals[0]?.reason, "incomplete");
    } finally {
      await listener.close();
    }
  });

  test("closing while connections wait for their header closes them uncounted, not as incomplete", async () => {
    const refusals: ProxyRefusal[] = [];
    const listener = await listen([], refusals);
    const socket = connect(listener, v1Header("198.51.100.7").subarray(0, 10));
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    // Time for the partial header to reach the gate over loopback; had it not arrived, the gate would see a close
    // before any byte, which it never counts: the wait makes the test meaningful, it cannot make it fail.
    await new Promise((resolve) => setTimeout(resolve, 100));
    await listener.close();
    await closed;
    // The gate hears of the close on a later tick than the listener's close resolves.
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(refusals, []);
  });
});
