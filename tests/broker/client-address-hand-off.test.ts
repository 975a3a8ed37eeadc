/**
 * The hand-off of a PROXY protocol header's client address from the raw TCP connection to the TLS socket over it
 * (broker/listeners/proxy-protocol/client-address-hand-off.ts), at unit level: the race it must survive needs a
 * connection reset in the kernel that Node has not noticed yet (its reads paused) and a balancer reusing its source
 * port for a new connection meanwhile, which a test cannot bring about on a live socket.
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { describe, test } from "node:test";
import { ClientAddressHandOff } from "../../broker/listeners/proxy-protocol/index.ts";
import { ObserverHub } from "../../broker/observer.ts";
import { PROXY_ADDRESS_LOST_WARNING, proxyGateOptions } from "../../broker/proxy-refusals.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { MemoryLogger } from "./helpers.ts";

const BALANCER = "10.0.0.5";

/** A socket as the hand-off sees it: a peer, and a `close` the test emits. */
class FakeSocket extends EventEmitter {
  constructor(
    readonly remoteAddress: string | undefined,
    readonly remotePort: number | undefined,
  ) {
    super();
  }
}

describe("the client address hand-off to TLS sockets", () => {
  test("the TLS socket over a connection gets the address its header named, once", () => {
    const handOff = new ClientAddressHandOff();
    const raw = new FakeSocket(BALANCER, 40001);
    handOff.keep(raw, "198.51.100.7");
    assert.deepEqual(handOff.take(new FakeSocket(BALANCER, 40001)), { status: "found", address: "198.51.100.7" });
    assert.equal(handOff.size, 0, "taken, not held until the raw connection closes");
    raw.emit("close");
    assert.equal(handOff.size, 0);
  });

  test("a connection that closes before its handshake ends leaves nothing behind", () => {
    const handOff = new ClientAddressHandOff();
    const raw = new FakeSocket(BALANCER, 40002);
    handOff.keep(raw, "198.51.100.8");
    raw.emit("close");
    assert.equal(handOff.size, 0);
  });

  test("an old connection's late close leaves the entry of a new one on the same balancer port alone", () => {
    // The old connection was reset in the kernel while its reads were paused; Node notices only later. The balancer
    // reused its source port meanwhile for a new client.
    const handOff = new ClientAddressHandOff();
    const old = new FakeSocket(BALANCER, 40003);
    handOff.keep(old, "198.51.100.1");
    const renewed = new FakeSocket(BALANCER, 40003);
    handOff.keep(renewed, "203.0.113.9");
    old.emit("close");
    assert.deepEqual(handOff.take(new FakeSocket(BALANCER, 40003)), { status: "found", address: "203.0.113.9" });
    renewed.emit("close");
    assert.equal(handOff.size, 0);
  });

  test("a TLS socket with nothing kept for its connection is missing its address, never given another's", () => {
    const handOff = new ClientAddressHandOff();
    handOff.keep(new FakeSocket(BALANCER, 40004), "198.51.100.4");
    assert.deepEqual(handOff.take(new FakeSocket(BALANCER, 40005)), { status: "missing" });
    assert.equal(handOff.size, 1);
  });

  test("a TLS socket whose connection is already gone (no peer address) is told so, not missing", () => {
    const handOff = new ClientAddressHandOff();
    assert.deepEqual(handOff.take(new FakeSocket(undefined, undefined)), { status: "gone" });
  });
});

test("a TLS connection refused for its lost address is counted under BRIDGE_ERR_PROXY_HEADER and warned per balancer", () => {
  const hub = new ObserverHub({});
  const logger = new MemoryLogger();
  const gate = proxyGateOptions({ hub, logger, clock: new ManualClock() }, "tls", {
    trustedSources: [BALANCER],
    headerTimeoutMs: 5000,
  });
  const lost = { peer: BALANCER, reason: "address-lost", detail: "not found" } as const;
  gate?.onRefused?.(lost);
  gate?.onRefused?.(lost);
  assert.equal(hub.stats.limitBreaches.BRIDGE_ERR_PROXY_HEADER, 2);
  assert.deepEqual(logger.lines, [
    {
      level: "warn",
      msg: PROXY_ADDRESS_LOST_WARNING,
      obj: { transport: "tls", remoteAddress: BALANCER, reason: "address-lost", detail: "not found", count: 1 },
    },
  ]);
});
