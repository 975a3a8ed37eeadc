import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { filterMatches, isUpTopic, mayPublish, maySubscribe } from "../../broker/acl.ts";
import { DeviceRateLimits, TokenBucket } from "../../broker/token-bucket.ts";
import { downQos, protocolToDown } from "../../broker/transport.ts";
import { ManualClock } from "../support/manual-clock.ts";

describe("broker ACL rules", () => {
  test("a device may publish only under its own up namespace", () => {
    assert.equal(mayPublish("a", "devices/a/up/telemetry"), true);
    assert.equal(mayPublish("a", "devices/a/up/telemetry/cbor"), true);
    assert.equal(mayPublish("a", "devices/ab/up/telemetry"), false);
    assert.equal(mayPublish("ab", "devices/a/up/telemetry"), false);
    assert.equal(mayPublish("a", "devices/a/down/cmd"), false);
    assert.equal(mayPublish("a", "devices/a/upx"), false);
  });

  test("a device may subscribe only to filters that cannot leave its down namespace", () => {
    assert.equal(maySubscribe("a", "devices/a/down/#"), true);
    assert.equal(maySubscribe("a", "devices/a/down/+"), true);
    assert.equal(maySubscribe("a", "devices/a/down/cmd"), true);
    assert.equal(maySubscribe("a", "devices/a/down/"), false);
    assert.equal(maySubscribe("a", "devices/a/#"), false);
    assert.equal(maySubscribe("a", "devices/+/down/#"), false);
    assert.equal(maySubscribe("a", "devices/ab/down/#"), false);
    assert.equal(maySubscribe("a", "#"), false);
  });

  test("topic filters match as MQTT defines", () => {
    assert.equal(filterMatches("devices/a/down/#", "devices/a/down/cmd"), true);
    assert.equal(filterMatches("devices/a/down/+", "devices/a/down/cmd"), true);
    assert.equal(filterMatches("devices/a/down/cmd", "devices/a/down/cmd"), true);
    assert.equal(filterMatches("devices/a/down/rpc", "devices/a/down/cmd"), false);
    assert.equal(filterMatches("devices/a/down/+", "devices/a/down/cmd/x"), false);
    assert.equal(filterMatches("devices/a/down/cmd/#", "devices/a/down/cmd"), true);
    assert.equal(isUpTopic("devices/a/up/telemetry"), true);
    assert.equal(isUpTopic("devices/a/down/cmd"), false);
  });
});

describe("token bucket", () => {
  test("allows a burst, then refills at the rate on the injected clock, never beyond capacity", () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(3, 2, clock);
    assert.deepEqual([bucket.take(), bucket.take(), bucket.take(), bucket.take()], [true, true, true, false]);
    clock.advanceSync(499);
    assert.equal(bucket.take(), false);
    clock.advanceSync(1);
    assert.equal(bucket.take(), true);
    clock.advanceSync(60_000);
    assert.deepEqual([bucket.take(), bucket.take(), bucket.take(), bucket.take()], [true, true, true, false]);
  });
});

describe("device rate limits", () => {
  test("a device's bucket outlives its sessions until it is full again, and idle full buckets are pruned", () => {
    const clock = new ManualClock();
    const limits = new DeviceRateLimits(2, 1, clock, 2);
    const first = limits.acquire("a");
    assert.deepEqual([first.take(), first.take(), first.take()], [true, true, false]);
    limits.release("a");
    // Reconnecting gets the same, still empty, bucket.
    const second = limits.acquire("a");
    assert.equal(second, first);
    assert.equal(second.take(), false);
    limits.release("a");
    clock.advanceSync(2000);
    limits.acquire("b");
    limits.release("b"); // full: forgotten at once
    assert.equal(limits.size, 1);
    limits.acquire("c");
    limits.acquire("d"); // over pruneAbove: "a" is full again and idle, so it goes
    assert.equal(limits.size, 2);
    assert.notEqual(limits.acquire("a"), first);
  });
});

describe("down frame mapping", () => {
  test("commands, rpc results and the final reasoning frame are QoS 1; the rest QoS 0", () => {
    assert.equal(downQos({ channel: "cmd", frame: { id: "c", n: "x" } }), 1);
    assert.equal(downQos({ channel: "rpc", frame: { id: "r", ok: true } }), 1);
    assert.equal(downQos({ channel: "reason", frame: { id: "q", seq: 3, fin: true } }), 1);
    assert.equal(downQos({ channel: "reason", frame: { id: "q", seq: 2, text: "x" } }), 0);
    assert.equal(downQos({ channel: "error", frame: { code: "X", msg: "m" } }), 0);
    assert.equal(downQos({ channel: "state", frame: { v: 1, d: {} } }), 0);
  });

  test("protocol messages become identity and full desired-state frames", () => {
    assert.deepEqual(
      protocolToDown({ type: "identity", name: "DeviceAgent", agent: "a", protocolVersion: 1, serverTime: 5 }),
      { channel: "identity", frame: { name: "DeviceAgent", id: "a", pv: 1, t: 5 } },
    );
    assert.deepEqual(protocolToDown({ type: "state", state: { on: true } }), {
      channel: "state",
      frame: { v: 0, d: { on: true }, full: true },
    });
    assert.deepEqual(protocolToDown({ type: "state", state: 42 }), {
      channel: "state",
      frame: { v: 0, d: { value: 42 }, full: true },
    });
  });
});
