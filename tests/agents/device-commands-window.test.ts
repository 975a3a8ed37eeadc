/**
 * Command flow control: at most `commandMaxInFlight` commands of a device are SENT and unfinished at a time; the rest
 * wait QUEUED, in seq order, and the next goes when one finishes. Through the real runtime, and on a bare SQLite for
 * what the outbox reads.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { CommandOutbox } from "../../agents/device/command-outbox.ts";
import type { CommandRecord } from "../../agents/device/index.ts";
import { DEVICE_AGENT_DEFAULTS, resolveDeviceAgentOptions } from "../../agents/device/options.ts";
import { DeviceHarness, type RecordingDevice } from "./device-harness.ts";
import { memorySql, recordingSql } from "./device-sql.ts";

const harnesses: DeviceHarness[] = [];
after(async () => {
  for (const h of harnesses) await h.dispose();
});

function harness(commandMaxInFlight?: number): DeviceHarness {
  const h = new DeviceHarness(
    commandMaxInFlight === undefined ? {} : { agentConfig: { DeviceAgent: { commandMaxInFlight } } },
  );
  harnesses.push(h);
  return h;
}

const cmdIds = (dev: RecordingDevice): string[] => dev.frames("cmd").map((f) => f.id);

async function queue(h: DeviceHarness, agentId: string, count: number, extra = {}): Promise<CommandRecord[]> {
  const out: CommandRecord[] = [];
  for (let i = 0; i < count; i++) {
    out.push(await h.call<CommandRecord>(agentId, "sendCommand", { name: `c${i}`, ...extra }));
  }
  return out;
}

async function states(h: DeviceHarness, agentId: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const c of await h.call<CommandRecord[]>(agentId, "listCommands", { limit: 1000 })) {
    counts[c.state] = (counts[c.state] ?? 0) + 1;
  }
  return counts;
}

test("40 commands queued offline: the window at the hello, then one per ack, in seq order, none twice", async () => {
  const h = harness();
  const window = DEVICE_AGENT_DEFAULTS.commandMaxInFlight;
  assert.equal(window, 16);
  const cmds = await queue(h, "fleet-1", 40);
  const dev = await h.open("fleet-1");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0" } });
  const ids = cmds.map((c) => c.id);
  assert.deepEqual(cmdIds(dev), ids.slice(0, window));
  assert.deepEqual(await states(h, "fleet-1"), { SENT: window, QUEUED: 40 - window });

  // Acks in another order than sent: each one still lets in exactly the oldest waiting command.
  const ackOrder = [...ids.slice(0, window)].reverse();
  let next = window;
  while (ackOrder.length > 0) {
    const id = ackOrder.shift()!;
    const before = cmdIds(dev).length;
    await h.send(dev, { channel: "ack", frame: { id, ok: true } });
    const sent = cmdIds(dev).slice(before);
    if (next < ids.length) {
      assert.deepEqual(sent, [ids[next]], `the ack of ${id} sends the next one`);
      ackOrder.push(ids[next]);
      next++;
    } else {
      assert.deepEqual(sent, [], "nothing waits any more");
    }
  }
  assert.deepEqual(cmdIds(dev), ids, "every command once, in seq order");
  assert.deepEqual(await states(h, "fleet-1"), { SUCCEEDED: 40 });
  const records = await h.call<CommandRecord[]>("fleet-1", "listCommands", { limit: 100 });
  assert.ok(records.every((c) => c.attempts === 1));
});

test("a new command while the window is full waits QUEUED, and a repeated ack lets nothing in", async () => {
  const h = harness(2);
  const dev = await h.open("fleet-2");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0" } });
  const [a, b, c] = await queue(h, "fleet-2", 3);
  assert.deepEqual([a.state, b.state, c.state], ["SENT", "SENT", "QUEUED"]);
  assert.deepEqual(cmdIds(dev), [a.id, b.id]);
  await h.send(dev, { channel: "ack", frame: { id: a.id, ok: true } });
  const d = await h.call<CommandRecord>("fleet-2", "sendCommand", { name: "d" });
  assert.equal(d.state, "QUEUED");
  await h.send(dev, { channel: "ack", frame: { id: a.id, ok: true } });
  assert.deepEqual(cmdIds(dev), [a.id, b.id, c.id], "the duplicate ack freed no second place");
});

test("expiry and failure of a SENT command free its place; expiry of a waiting one sends nothing", async () => {
  const h = harness(2);
  const dev = await h.open("fleet-3");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0" } });
  const a = await h.call<CommandRecord>("fleet-3", "sendCommand", { name: "a", ttlSeconds: 10 });
  const b = await h.call<CommandRecord>("fleet-3", "sendCommand", { name: "b" });
  const c = await h.call<CommandRecord>("fleet-3", "sendCommand", { name: "c", ttlSeconds: 100 });
  const d = await h.call<CommandRecord>("fleet-3", "sendCommand", { name: "d", ttlSeconds: 5 });
  const e = await h.call<CommandRecord>("fleet-3", "sendCommand", { name: "e" });
  assert.deepEqual(cmdIds(dev), [a.id, b.id]);
  await h.clock.advance(6_000);
  assert.equal((await h.call<CommandRecord>("fleet-3", "getCommand", d.id)).state, "EXPIRED");
  assert.deepEqual(cmdIds(dev), [a.id, b.id], "a waiting command held no place");
  await h.clock.advance(5_000);
  assert.equal((await h.call<CommandRecord>("fleet-3", "getCommand", a.id)).state, "EXPIRED");
  assert.deepEqual(cmdIds(dev), [a.id, b.id, c.id], "the expired one's place went to the next");
  await h.send(dev, { channel: "ack", frame: { id: b.id, ok: false, err: "jammed" } });
  assert.equal((await h.call<CommandRecord>("fleet-3", "getCommand", b.id)).state, "FAILED");
  assert.deepEqual(cmdIds(dev), [a.id, b.id, c.id, e.id], "the failed one's place went to the next");
});

test("a command out of attempts at a reconnect frees its place in the same delivery", async () => {
  const h = harness(2);
  const first = await h.open("fleet-4");
  await h.send(first, { channel: "hello", frame: { fw: "1.0" } });
  const a = await h.call<CommandRecord>("fleet-4", "sendCommand", { name: "a", maxAttempts: 1 });
  const b = await h.call<CommandRecord>("fleet-4", "sendCommand", { name: "b" });
  const c = await h.call<CommandRecord>("fleet-4", "sendCommand", { name: "c" });
  assert.deepEqual(cmdIds(first), [a.id, b.id]);
  await h.close(first);
  const second = await h.open("fleet-4");
  await h.send(second, { channel: "hello", frame: { fw: "1.0" } });
  assert.equal((await h.call<CommandRecord>("fleet-4", "getCommand", a.id)).state, "FAILED");
  assert.deepEqual(cmdIds(second), [b.id, c.id], "the unacknowledged one again first, then the waiting one");
});

test("a restart keeps the window: the SENT ones go again first, the waiting ones follow the acks", async () => {
  const h = harness(3);
  const cmds = await queue(h, "fleet-5", 6);
  const ids = cmds.map((c) => c.id);
  const first = await h.open("fleet-5");
  await h.send(first, { channel: "hello", frame: { fw: "1.0" } });
  await h.send(first, { channel: "ack", frame: { id: ids[0], ok: true } });
  assert.deepEqual(cmdIds(first), ids.slice(0, 4));
  await h.restart();
  assert.deepEqual(await states(h, "fleet-5"), { SUCCEEDED: 1, SENT: 3, QUEUED: 2 });
  const second = await h.open("fleet-5");
  await h.send(second, { channel: "telemetry", frame: { r: { t: 1 } } });
  assert.deepEqual(cmdIds(second), ids.slice(1, 4), "only the window, no waiting one");
  await h.send(second, { channel: "ack", frame: { id: ids[2], ok: true } });
  assert.deepEqual(cmdIds(second), [...ids.slice(1, 4), ids[4]]);
  const records = await h.call<CommandRecord[]>("fleet-5", "listCommands", { limit: 10 });
  assert.deepEqual(records.map((r) => [r.id, r.state, r.attempts]).reverse(), [
    [ids[0], "SUCCEEDED", 1],
    [ids[1], "SENT", 2],
    [ids[2], "SUCCEEDED", 2],
    [ids[3], "SENT", 2],
    [ids[4], "SENT", 1],
    [ids[5], "QUEUED", 0],
  ]);
});

test("a command to an idle connected device goes out in the event that queued it, the next one too", async () => {
  for (const window of [undefined, 1]) {
    const h = harness(window);
    const dev = await h.open("fleet-6");
    await h.send(dev, { channel: "hello", frame: { fw: "1.0" } });
    for (const name of ["a", "b"]) {
      const cmd = await h.call<CommandRecord>("fleet-6", "sendCommand", { name });
      assert.equal(cmd.state, "SENT", `window ${window ?? "default"}`);
      assert.equal(cmdIds(dev).at(-1), cmd.id);
      await h.send(dev, { channel: "ack", frame: { id: cmd.id, ok: true } });
    }
  }
});

test("commandMaxInFlight must be an integer of at least 1", () => {
  assert.equal(resolveDeviceAgentOptions({ commandMaxInFlight: 1 }).commandMaxInFlight, 1);
  for (const bad of [0, 1.5, "4"]) {
    assert.throws(
      () => resolveDeviceAgentOptions({ commandMaxInFlight: bad }),
      /device agent option commandMaxInFlight must be an integer >= 1/,
    );
  }
});

test("the outbox counts open commands once, keeps the count, and reads the window through its index", () => {
  const { sql: plain, db, close } = memorySql();
  const { counted: sql, statements } = recordingSql(plain);
  try {
    const outbox = new CommandOutbox(sql, () => 1_000);
    for (const id of ["a", "b", "c"]) outbox.add({ id, name: id, args: null, ttlSeconds: 60, maxAttempts: 3 });
    assert.equal(outbox.openCount(), 3);
    outbox.add({ id: "d", name: "d", args: null, ttlSeconds: 60, maxAttempts: 3 });
    outbox.takeDeliveries({ onlyQueued: false, sessions: ["s1"], maxInFlight: 2 });
    outbox.ack("a", true, null, null);
    assert.equal(outbox.openCount(), 3);
    assert.equal(statements.filter((s) => s.includes("COUNT(*)")).length, 1);
    assert.equal(outbox.list({ state: "SENT" }).length, 1);
    outbox.invalidate();
    assert.equal(outbox.openCount(), 3, "counted again after a rollback");

    const windowRead = statements.find((s) => s.includes("LIMIT") && s.includes("seq >"))!;
    const plan = db.prepare(`EXPLAIN QUERY PLAN ${windowRead}`).all(0, 2) as Array<{ detail: string }>;
    assert.match(plan.map((p) => p.detail).join(" "), /commands_open_seq/);
  } finally {
    close();
  }
});
