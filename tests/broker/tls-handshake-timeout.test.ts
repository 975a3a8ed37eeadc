/**
 * A TLS listener closes a connection whose handshake does not finish within the TLS server's `handshakeTimeout`
 * (Node's default 120 s). Node only reports the timeout (`tlsClientError`) and leaves the socket open, so a peer that
 * connects and never sends its ClientHello, directly or behind a PROXY protocol header, would hold a socket of the
 * listener's bound forever.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { describe, test } from "node:test";
import { listenSockets } from "../../broker/listeners/socket-listener.ts";
import { systemClock } from "../../broker/clock.ts";
import { v1Header } from "./proxy-header-builders.ts";
import { fixtureTlsMaterial } from "./tls-material.ts";

const material = fixtureTlsMaterial();
const HANDSHAKE_TIMEOUT_MS = 100;

/** Connects, writes `first` (if any) and nothing more; resolves true once the server closes it, false after 3 s. */
async function closedByServer(port: number, first: Buffer | undefined): Promise<boolean> {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => {});
  if (first !== undefined) socket.write(first);
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 3000);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  socket.destroy();
  return closed;
}

describe("a TLS handshake that does not finish in time", () => {
  for (const proxied of [false, true]) {
    test(`closes its connection${proxied ? " behind a PROXY protocol header" : ""}`, async () => {
      let accepted = 0;
      const listener = await listenSockets({
        kind: "tls",
        host: "127.0.0.1",
        port: 0,
        tls: { ...material, handshakeTimeout: HANDSHAKE_TIMEOUT_MS },
        accept: () => accepted++,
        proxyProtocol: proxied
          ? { trustedSources: ["127.0.0.1"], headerTimeoutMs: 60_000, clock: systemClock }
          : undefined,
      });
      try {
        const closed = await closedByServer(listener.address().port, proxied ? v1Header("203.0.113.7") : undefined);
        assert.equal(closed, true, "the server closed the connection after its handshake timeout");
        assert.equal(accepted, 0);
      } finally {
        await listener.close();
      }
    });
  }
});
