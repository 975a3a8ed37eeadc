/** DeviceAgent command outbox and online status through the real runtime (injected clock for TTLs). */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { commandFrame } from "../../agents/device/command-outbox.ts";
import type { CommandRecord, DeviceStatus } from "../../agents/device/index.ts";
import { COMMAND_TTL_MAX_SECONDS, resolveDeviceAgentOptions } from "../../agents/device/options.ts";
import { getCodec } from "../../codecs/index.ts";
import { DeviceHarness } from "./device-harness.ts";

const harnesses: DeviceHarness[] = [];
after(async () => {
  for (const h of harnesses) await h.dispose();
});

function harness(): DeviceHarness {
  const h = new DeviceHarness();
  harnesses.push(h);
  return h;
}

test("commands sent while the device is online go out at once, in order, as QoS 1 cmd frames", async () => {
  const h = harness();
  const dev = await h.open("door-1", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0" } });
  const a = await h.call<CommandRecord>("door-1", "sendCommand", { name: "unlock", args: { s: 5 }, ttlSeconds: 30 });
  const b = await h.call<CommandRecord>("door-1", "sendCommand", { name: "lock" });
  assert.equal(a.state, "SENT");
  assert.equal(a.attempts, 1);
  assert.deepEqual(
    dev.sent.filter((s) => s.message.channel === "cmd").map((s) => [s.message.frame, s.qos]),
    [
      [{ id: a.id, n: "unlock", a: { s: 5 }, exp: h.clock.now() + 30_000 }, 1],
      [{ id: b.id, n: "lock", exp: h.clock.now() + 3_600_000 }, 1],
    ],
  );
});

test("a command queued while offline is delivered after the next hello and redelivered after reconnect until acked", async () => {
  const h = harness();
  const queued = await h.call<CommandRecord>("door-2", "sendCommand", { name: "reboot", maxAttempts: 5 });
  assert.equal(queued.state, "QUEUED");
  const first = await h.open("door-2");
  assert.deepEqual(first.frames("cmd"), [], "nothing on connect: the session has not subscribed yet");
  await h.send(first, { channel: "hello", frame: { fw: "1.0" } });
  assert.equal(first.frames("cmd").length, 1, "delivered after the hello");
  await h.send(first, { channel: "telemetry", frame: { r: { x: 1 } } });
  assert.equal(first.frames("cmd").length, 1, "not again within the session");
  await h.close(first);

  const second = await h.open("door-2");
  await h.send(second, { channel: "hello", frame: { fw: "1.0" } });
  assert.deepEqual(
    second.frames("cmd").map((f) => f.id),
    [queued.id],
    "unacknowledged command redelivered",
  );
  await h.send(second, { channel: "ack", frame: { id: queued.id, ok: true, res: { up: 1 } } });
  await h.send(second, { channel: "ack", frame: { id: queued.id, ok: false, err: "dup" } });
  const done = await h.call<CommandRecord>("door-2", "getCommand", queued.id);
  assert.equal(done.state, "SUCCEEDED");
  assert.deepEqual(done.result, { up: 1 });
  assert.equal(done.attempts, 2);
  assert.equal(done.error, null, "the duplicate ack changed nothing");
  await h.close(second);
  const third = await h.open("door-2");
  await h.send(third, { channel: "hello", frame: { fw: "1.0" } });
  assert.deepEqual(third.frames("cmd"), [], "an acked command is not sent again");
});

test("a device that never says hello gets its pending commands with its first message of a session", async () => {
  const h = harness();
  const cmd = await h.call<CommandRecord>("plain-1", "sendCommand", { name: "blink" });
  const dev = await h.open("plain-1", "json");
  assert.deepEqual(dev.frames("cmd"), []);
  await h.send(dev, { channel: "telemetry", frame: { r: { t: 1 } } });
  await h.send(dev, { channel: "telemetry", frame: { r: { t: 2 } } });
  assert.deepEqual(
    dev.frames("cmd").map((f) => f.id),
    [cmd.id],
  );
  await h.close(dev);
  const next = await h.open("plain-1", "json");
  await h.send(next, { channel: "telemetry", frame: { r: { t: 3 } } });
  assert.deepEqual(
    next.frames("cmd").map((f) => f.id),
    [cmd.id],
    "redelivered in the next session until acked",
  );
});

test("a device that said hello once and reconnects without one gets its open commands and desired state with its first message", async () => {
  const h = harness();
  const first = await h.open("plain-2");
  await h.send(first, { channel: "hello", frame: { fw: "1.0", metrics: ["t"] } });
  const unacked = await h.call<CommandRecord>("plain-2", "sendCommand", { name: "a" });
  await h.close(first);
  const queued = await h.call<CommandRecord>("plain-2", "sendCommand", { name: "b" });
  await h.call("plain-2", "setDesired", { led: "on" });

  // The alias table is kept across sessions, so firmware may go straight to rv after a reconnect (protocol.md).
  const second = await h.open("plain-2");
  await h.send(second, { channel: "telemetry", frame: { rv: [1] } });
  await h.send(second, { channel: "telemetry", frame: { rv: [2] } });
  assert.deepEqual(
    second.frames("cmd").map((f) => f.id),
    [unacked.id, queued.id],
    "the unacknowledged command goes again and the one queued while offline goes, once per session",
  );
  assert.deepEqual(second.frames("state"), [{ v: 1, d: { led: "on" }, full: true }]);
});

test("a session that opens with the ack of a command does not get that command again", async () => {
  const h = harness();
  const first = await h.open("plain-3");
  await h.send(first, { channel: "hello", frame: { fw: "1.0" } });
  const done = await h.call<CommandRecord>("plain-3", "sendCommand", { name: "a" });
  const open = await h.call<CommandRecord>("plain-3", "sendCommand", { name: "b" });
  await h.close(first);
  // The device ran `a` offline and flushes its ack first thing after reconnecting.
  const second = await h.open("plain-3");
  await h.send(second, { channel: "ack", frame: { id: done.id, ok: true } });
  assert.deepEqual(
    second.frames("cmd").map((f) => f.id),
    [open.id],
  );
  const acked = await h.call<CommandRecord>("plain-3", "getCommand", done.id);
  assert.deepEqual([acked.state, acked.attempts], ["SUCCEEDED", 1]);
});

test("a command sent to a session before its greeting is not sent again with it, even after the agent hibernated", async () => {
  const h = new DeviceHarness({ idleTimeoutMs: 1000 });
  harnesses.push(h);
  const old = await h.open("plain-4");
  await h.send(old, { channel: "hello", frame: { fw: "1.0" } });
  // A takeover: the new session connected, the old one is still open, neither has sent anything since.
  const fresh = await h.open("plain-4");
  const cmd = await h.call<CommandRecord>("plain-4", "sendCommand", { name: "a" });
  assert.deepEqual(
    [old.frames("cmd").map((f) => f.id), fresh.frames("cmd").map((f) => f.id)],
    [[cmd.id], [cmd.id]],
    "a new command goes to every open session at once",
  );
  await h.close(old, "takeover");
  const before = h.runtime.stats().active;
  await h.clock.advance(5000);
  assert.ok(h.runtime.stats().active < before, "the agent hibernated");
  await h.send(fresh, { channel: "hello", frame: { fw: "1.0" } });
  await h.send(fresh, { channel: "telemetry", frame: { r: { t: 1 } } });
  assert.deepEqual(
    fresh.frames("cmd").map((f) => f.id),
    [cmd.id],
    "the greeting does not send it again",
  );
  const record = await h.call<CommandRecord>("plain-4", "getCommand", cmd.id);
  assert.deepEqual([record.state, record.attempts], ["SENT", 1]);
  await h.close(fresh);
  const next = await h.open("plain-4");
  await h.send(next, { channel: "telemetry", frame: { r: { t: 2 } } });
  assert.deepEqual(
    next.frames("cmd").map((f) => f.id),
    [cmd.id],
    "the next session gets it again",
  );
});

test("a new command sent to a session before its greeting follows the older unacknowledged ones, in seq order", async () => {
  const h = harness();
  const first = await h.open("plain-5");
  await h.send(first, { channel: "hello", frame: { fw: "1.0" } });
  const one = await h.call<CommandRecord>("plain-5", "sendCommand", { name: "one", maxAttempts: 5 });
  await h.close(first);
  // The device reconnected and has not published yet (its greeting would redeliver `one`) when `two` is queued.
  const second = await h.open("plain-5");
  const two = await h.call<CommandRecord>("plain-5", "sendCommand", { name: "two", maxAttempts: 5 });
  assert.deepEqual(
    second.frames("cmd").map((f) => f.id),
    [one.id, two.id],
  );
  await h.send(second, { channel: "hello", frame: { fw: "1.0" } });
  assert.deepEqual(
    second.frames("cmd").map((f) => f.id),
    [one.id, two.id],
    "the greeting sends neither again",
  );
  const records = [
    await h.call<CommandRecord>("plain-5", "getCommand", one.id),
    await h.call<CommandRecord>("plain-5", "getCommand", two.id),
  ];
  assert.deepEqual(
    records.map((r) => [r.state, r.attempts]),
    [
      ["SENT", 2],
      ["SENT", 1],
    ],
  );
});

test("an unacknowledged command expires at its TTL by schedule, and a late ack does not revive it", async () => {
  const h = harness();
  const dev = await h.open("door-3");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0" } });
  const cmd = await h.call<CommandRecord>("door-3", "sendCommand", { name: "open", ttlSeconds: 10 });
  await h.clock.advance(9_000);
  assert.equal((await h.call<CommandRecord>("door-3", "getCommand", cmd.id)).state, "SENT");
  await h.clock.advance(2_000);
  const expired = await h.call<CommandRecord>("door-3", "getCommand", cmd.id);
  assert.equal(expired.state, "EXPIRED");
  await h.send(dev, { channel: "ack", frame: { id: cmd.id, ok: true } });
  assert.equal((await h.call<CommandRecord>("door-3", "getCommand", cmd.id)).state, "EXPIRED");
  assert.deepEqual(
    (await h.call<CommandRecord[]>("door-3", "listCommands", { state: "EXPIRED" })).map((c) => c.id),
    [cmd.id],
  );
});

test("a command runs out of attempts after maxAttempts deliveries without an ack", async () => {
  const h = harness();
  const cmd = await h.call<CommandRecord>("door-4", "sendCommand", { name: "x", maxAttempts: 2 });
  for (let i = 0; i < 3; i++) {
    const dev = await h.open("door-4");
    await h.send(dev, { channel: "hello", frame: { fw: "1" } });
    await h.close(dev);
  }
  const failed = await h.call<CommandRecord>("door-4", "getCommand", cmd.id);
  assert.equal(failed.state, "FAILED");
  assert.equal(failed.attempts, 2);
});

test("sendCommand refuses a bad name with an error value naming the field", async () => {
  const h = harness();
  const result = await h.runtime.call("door-5", "sendCommand", [{ name: "" }]);
  assert.equal(result.ok, false);
  if (!result.ok) {
    assert.equal(result.code, "BRIDGE_ERR_INVALID_ARGUMENT");
    assert.match(result.message, /^name /);
  }
});

test("a TTL whose expiry no down/cmd frame can carry is refused, in sendCommand and as the class default", async () => {
  const h = harness();
  // now + 10^13 s is beyond 2^53 ms: the frame's exp (an unsigned safe integer) would fail to encode on every delivery.
  const result = await h.runtime.call("door-6", "sendCommand", [{ name: "x", ttlSeconds: 10_000_000_000_000 }]);
  assert.equal(result.ok, false);
  if (!result.ok) {
    assert.equal(result.code, "BRIDGE_ERR_INVALID_ARGUMENT");
    assert.match(result.message, /^ttlSeconds /);
  }
  assert.deepEqual(await h.call<CommandRecord[]>("door-6", "listCommands"), []);
  const longest = await h.call<CommandRecord>("door-6", "sendCommand", {
    name: "x",
    ttlSeconds: COMMAND_TTL_MAX_SECONDS,
  });
  assert.doesNotThrow(() => getCodec("cbor").encodeDown("cmd", commandFrame(longest)));
  assert.throws(
    () => resolveDeviceAgentOptions({ commandTtlSeconds: COMMAND_TTL_MAX_SECONDS + 1 }),
    /commandTtlSeconds/,
  );
});

test("online status stays exact through a takeover and goes offline on the last will", async () => {
  const h = harness();
  const t0 = h.clock.now();
  const status = () => h.call<DeviceStatus>("car-1", "getStatus");
  assert.equal((await status()).online, false);
  const first = await h.open("car-1");
  await h.send(first, { channel: "hello", frame: { fw: "4.2", codec: "cbor", stream: false, maxFrame: 512 } });
  await h.clock.advance(1000);
  const second = await h.open("car-1");
  await h.close(first, "takeover");
  const during = await status();
  assert.equal(during.online, true, "takeover keeps it online");
  assert.equal(during.connections, 1);
  assert.equal(during.firmware, "4.2");
  assert.deepEqual(during.caps, { sync: true, stream: false, maxFrame: 512 });
  await h.clock.advance(5000);
  await h.close(second, "will");
  const after = await status();
  assert.equal(after.online, false);
  assert.equal(after.lastClose, "will");
  assert.equal(after.lastSeen, t0 + 6000);
});

test("a firmware version cut to 128 characters keeps its last character whole, so getStatus still reaches the device", async () => {
  const h = harness();
  const dev = await h.open("fw-1", "cbor");
  // 127 characters, then an emoji whose surrogate pair straddles the cut.
  await h.send(dev, { channel: "hello", frame: { fw: `${"v".repeat(127)}\u{1F600}tail` } });
  const status = await h.call<DeviceStatus>("fw-1", "getStatus");
  assert.equal(status.firmware, "v".repeat(127));
  assert.doesNotThrow(() => getCodec("cbor").encodeDown("rpc", { id: "s", ok: true, res: status as never }));
});
