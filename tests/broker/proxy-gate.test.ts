/**
 * The PROXY protocol gate on sockets it is handed directly: what it does before reading a header.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { describe, test } from "node:test";
import { createProxyGate, type ProxyRefusal } from "../../broker/listeners/proxy-protocol/index.ts";
import { ManualClock } from "../support/manual-clock.ts";

describe("the PROXY protocol gate", () => {
  test("a connection already reset when the gate gets it (no peer address) is closed without counting as untrusted", () => {
    // Node reads the peer's address lazily; a peer that reset the connection before the listener's callback ran (a
    // HAProxy check closes with a reset, and a busy bridge accepts late) has none. That is no untrusted sender.
    const refusals: ProxyRefusal[] = [];
    const clock = new ManualClock();
    const gate = createProxyGate({
      trustedSources: ["127.0.0.1"],
      headerTimeoutMs: 1000,
      clock,
      onRefused: (refusal) => refusals.push(refusal),
    });
    const gone = new net.Socket();
    assert.equal(gone.remoteAddress, undefined);
    let proceeded = false;
    gate(gone, () => {
      proceeded = true;
    });
    assert.equal(gone.destroyed, true);
    assert.equal(proceeded, false);
    assert.deepEqual(refusals, []);
    assert.equal(clock.pending, 0, "no header timer for it");
  });
});
