/**
 * Command ack timeout: a SENT command the device does not acknowledge within its ack timeout after its latest delivery
 * goes again while the device is online, and ends FAILED out of attempts, freeing its place in the window. Through the
 * real runtime, with the injected clock.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, test } from "node:test";
import Database from "better-sqlite3";
import {
  type CommandRecord,
  type CommandTransition,
  commandObserverWiring,
  DeviceAgent,
} from "../../agents/device/index.ts";
import { COMMAND_TTL_MAX_SECONDS, resolveDeviceAgentOptions } from "../../agents/device/options.ts";
import { DeviceHarness, type HarnessOptions, type RecordingDevice } from "./device-harness.ts";

const harnesses: DeviceHarness[] = [];
after(async () => {
  for (const h of harnesses) await h.dispose();
});

/** A DeviceAgent that lists the methods of its pending alarms, to see which timers a command left armed. */
class AckProbe extends DeviceAgent {
  alarmMethods(): string[] {
    return this.getSchedules().map((s) => s.method);
  }
}

function harness(options: Record<string, unknown> = {}, extra: HarnessOptions = {}): DeviceHarness {
  const h = new DeviceHarness({ agentClass: AckProbe, agentConfig: { AckProbe: options }, ...extra });
  harnesses.push(h);
  return h;
}

const cmdIds = (dev: RecordingDevice): string[] => dev.frames("cmd").map((f) => f.id);

async function online(h: DeviceHarness, agentId: string): Promise<RecordingDevice> {
  const dev = await h.open(agentId);
  await h.send(dev, { channel: "hello", frame: { fw: "1.0" } });
  return dev;
}

const record = (h: DeviceHarness, agentId: string, id: string) => h.call<CommandRecord>(agentId, "getCommand", id);
const ackAlarms = async (h: DeviceHarness, agentId: string) =>
  (await h.call<string[]>(agentId, "alarmMethods")).filter((m) => m === "commandAckTimedOut").length;

test("an unacknowledged command goes again after the default 5 minutes while the device stays connected", async () => {
  const h = harness();
  const dev = await online(h, "ack-1");
  const cmd = await h.call<CommandRecord>("ack-1", "sendCommand", { name: "open" });
  assert.equal(cmd.ackTimeoutMs, 300_000);
  await h.clock.advance(299_999);
  assert.deepEqual(cmdIds(dev), [cmd.id], "not before the timeout");
  await h.clock.advance(1);
  assert.deepEqual(cmdIds(dev), [cmd.id, cmd.id], "the same id again");
  assert.deepEqual(dev.frames("cmd")[1], dev.frames("cmd")[0], "the same frame");
  const again = await record(h, "ack-1", cmd.id);
  assert.deepEqual([again.state, again.attempts, again.sentAt], ["SENT", 2, h.clock.now()]);
  await h.clock.advance(300_000);
  assert.deepEqual(cmdIds(dev), [cmd.id, cmd.id, cmd.id], "timed from the latest delivery");
  await h.send(dev, { channel: "ack", frame: { id: cmd.id, ok: true } });
  assert.equal((await record(h, "ack-1", cmd.id)).attempts, 3);
});

test("out of attempts the command ends FAILED and the next waiting one goes in the same event", async () => {
  const seen: CommandTransition[] = [];
  const h = harness(
    { commandMaxInFlight: 1, commandAckTimeoutMs: 10_000 },
    { agentWiring: commandObserverWiring([AckProbe], (t) => seen.push(t)) },
  );
  const dev = await online(h, "ack-2");
  const a = await h.call<CommandRecord>("ack-2", "sendCommand", { name: "a", maxAttempts: 2 });
  const b = await h.call<CommandRecord>("ack-2", "sendCommand", { name: "b" });
  assert.deepEqual(cmdIds(dev), [a.id]);
  await h.clock.advance(10_000);
  assert.deepEqual(cmdIds(dev), [a.id, a.id]);
  await h.clock.advance(10_000);
  assert.deepEqual(cmdIds(dev), [a.id, a.id, b.id], "the failed one's place went to the next");
  const failed = await record(h, "ack-2", a.id);
  assert.deepEqual([failed.state, failed.attempts, failed.error], ["FAILED", 2, "no ack after 2 deliveries"]);
  const next = await record(h, "ack-2", b.id);
  assert.deepEqual([next.state, next.sentAt], ["SENT", failed.doneAt]);
  assert.deepEqual(
    seen.filter((t) => t.commandId === a.id).map((t) => [t.from, t.state]),
    [
      [null, "QUEUED"],
      ["QUEUED", "SENT"],
      ["SENT", "FAILED"],
    ],
    "a redelivery is no transition; running out of attempts is",
  );
  assert.equal(await ackAlarms(h, "ack-2"), 1, "only the next command's timer is armed");
});

test("while the device is offline the timeout sends nothing; the reconnect redelivers and re-arms it", async () => {
  const h = harness({ commandAckTimeoutMs: 10_000 });
  const first = await online(h, "ack-3");
  const cmd = await h.call<CommandRecord>("ack-3", "sendCommand", { name: "a" });
  await h.close(first);
  await h.clock.advance(60_000);
  assert.deepEqual(cmdIds(first), [cmd.id]);
  assert.deepEqual([(await record(h, "ack-3", cmd.id)).attempts], [1], "no attempt spent offline");
  const second = await online(h, "ack-3");
  assert.deepEqual(cmdIds(second), [cmd.id], "the greeting redelivers it");
  await h.clock.advance(9_999);
  assert.deepEqual(cmdIds(second), [cmd.id]);
  await h.clock.advance(1);
  assert.deepEqual(cmdIds(second), [cmd.id, cmd.id], "timed from the reconnect's delivery");
  assert.equal((await record(h, "ack-3", cmd.id)).attempts, 3);
});

test("an ack before the timeout cancels its alarm, and so does the expiry", async () => {
  const h = harness({ commandAckTimeoutMs: 10_000 });
  const dev = await online(h, "ack-4");
  const acked = await h.call<CommandRecord>("ack-4", "sendCommand", { name: "a" });
  const expiring = await h.call<CommandRecord>("ack-4", "sendCommand", { name: "b", ttlSeconds: 5 });
  assert.equal(await ackAlarms(h, "ack-4"), 2);
  await h.send(dev, { channel: "ack", frame: { id: acked.id, ok: true } });
  assert.equal(await ackAlarms(h, "ack-4"), 1, "the ack cancelled its timer");
  await h.clock.advance(5_000);
  assert.equal((await record(h, "ack-4", expiring.id)).state, "EXPIRED");
  assert.equal(await ackAlarms(h, "ack-4"), 0, "the expiry cancelled its timer");
  await h.clock.advance(60_000);
  assert.deepEqual(cmdIds(dev), [acked.id, expiring.id], "nothing went again");
  assert.equal((await record(h, "ack-4", acked.id)).attempts, 1);
});

test("sendCommand's ackTimeoutSeconds overrides the class's, and 0 turns it off for that command", async () => {
  const h = harness({ commandAckTimeoutMs: 60_000 });
  const dev = await online(h, "ack-5");
  const quick = await h.call<CommandRecord>("ack-5", "sendCommand", { name: "a", ackTimeoutSeconds: 20 });
  const never = await h.call<CommandRecord>("ack-5", "sendCommand", { name: "b", ackTimeoutSeconds: 0 });
  const plain = await h.call<CommandRecord>("ack-5", "sendCommand", { name: "c" });
  assert.deepEqual([quick.ackTimeoutMs, never.ackTimeoutMs, plain.ackTimeoutMs], [20_000, 0, 60_000]);
  await h.clock.advance(20_000);
  assert.deepEqual(cmdIds(dev), [quick.id, never.id, plain.id, quick.id]);
  await h.clock.advance(40_000);
  // At 60 s both are due; the alarm set first fires first.
  assert.deepEqual(cmdIds(dev), [quick.id, never.id, plain.id, quick.id, quick.id, plain.id, quick.id]);
  assert.equal((await record(h, "ack-5", never.id)).attempts, 1);
  assert.equal(await ackAlarms(h, "ack-5"), 2, "no timer for the one without a timeout");
});

test("commandAckTimeoutMs 0 turns the timeout off: only a reconnect redelivers", async () => {
  const h = harness({ commandAckTimeoutMs: 0 });
  const dev = await online(h, "ack-6");
  const cmd = await h.call<CommandRecord>("ack-6", "sendCommand", { name: "a" });
  assert.equal(cmd.ackTimeoutMs, 0);
  await h.clock.advance(3_599_000);
  assert.deepEqual(cmdIds(dev), [cmd.id]);
  assert.equal(await ackAlarms(h, "ack-6"), 0);
});

test("the timer wakes a hibernated agent and goes on past its wake", async () => {
  const h = harness({ commandAckTimeoutMs: 60_000 }, { idleTimeoutMs: 1000 });
  const dev = await online(h, "ack-7");
  const cmd = await h.call<CommandRecord>("ack-7", "sendCommand", { name: "a" });
  const active = h.runtime.stats().active;
  await h.clock.advance(5_000);
  assert.ok(h.runtime.stats().active < active, "the agent hibernated");
  await h.clock.advance(55_000);
  assert.deepEqual(cmdIds(dev), [cmd.id, cmd.id], "the alarm woke it and it redelivered");
  await h.clock.advance(60_000);
  assert.deepEqual(cmdIds(dev), [cmd.id, cmd.id, cmd.id]);
});

test("the timer survives a bridge restart: it fires for the session open when it falls due", async () => {
  const h = harness({ commandAckTimeoutMs: 60_000 });
  await online(h, "ack-8");
  const cmd = await h.call<CommandRecord>("ack-8", "sendCommand", { name: "a" });
  await h.clock.advance(30_000);
  await h.restart();
  // Connected, but not greeted yet: only the alarm armed before the restart sends it now.
  const dev = await h.open("ack-8");
  await h.clock.advance(29_999);
  assert.deepEqual(cmdIds(dev), []);
  await h.clock.advance(1);
  assert.deepEqual(cmdIds(dev), [cmd.id]);
  await h.send(dev, { channel: "telemetry", frame: { r: { t: 1 } } });
  assert.deepEqual(cmdIds(dev), [cmd.id], "its greeting does not send it again");
  assert.equal((await record(h, "ack-8", cmd.id)).attempts, 2);
});

test("after commandMaxInFlight was lowered, the timeout leaves the SENT commands beyond the window to the acks", async () => {
  const options: Record<string, unknown> = { commandMaxInFlight: 3, commandAckTimeoutMs: 10_000 };
  const h = harness(options);
  await online(h, "ack-11");
  const cmds: CommandRecord[] = [];
  for (const name of ["a", "b", "c"]) cmds.push(await h.call<CommandRecord>("ack-11", "sendCommand", { name }));
  const [a, b, c] = cmds;
  options.commandMaxInFlight = 1;
  await h.restart();
  const dev = await online(h, "ack-11");
  assert.deepEqual(cmdIds(dev), [a.id], "the reconnect resends the window only");
  await h.clock.advance(10_000);
  assert.deepEqual(cmdIds(dev), [a.id, a.id], "the timeouts armed before the restart send nothing beyond it");
  assert.deepEqual(
    [(await record(h, "ack-11", b.id)).attempts, (await record(h, "ack-11", c.id)).attempts],
    [1, 1],
    "and spend no attempt",
  );
  await h.send(dev, { channel: "ack", frame: { id: a.id, ok: true } });
  assert.deepEqual(cmdIds(dev), [a.id, a.id, b.id], "the ack lets the next in");
  await h.clock.advance(10_000);
  assert.deepEqual(cmdIds(dev), [a.id, a.id, b.id, b.id], "and its delivery armed its timeout");
});

test("a session not greeted yet gets the older command first when a newer one's timeout falls", async () => {
  const h = harness({ commandAckTimeoutMs: 10_000 });
  const first = await online(h, "ack-12");
  const older = await h.call<CommandRecord>("ack-12", "sendCommand", { name: "a" });
  await h.clock.advance(5_000);
  const newer = await h.call<CommandRecord>("ack-12", "sendCommand", { name: "b" });
  await h.close(first);
  await h.clock.advance(5_000); // the older one's timeout falls while the device is offline
  const quiet = await h.open("ack-12");
  await h.clock.advance(5_000); // the newer one's falls while the new session has said nothing yet
  assert.deepEqual(cmdIds(quiet), [older.id, newer.id], "in seq order");
  await h.send(quiet, { channel: "telemetry", frame: { r: { t: 1 } } });
  assert.deepEqual(cmdIds(quiet), [older.id, newer.id], "its greeting sends neither again");
  assert.deepEqual(
    [(await record(h, "ack-12", older.id)).attempts, (await record(h, "ack-12", newer.id)).attempts],
    [2, 2],
  );
});

test("a command stored before commands had an ack timeout follows the class's", async () => {
  const h = harness({ commandAckTimeoutMs: 15_000 });
  const queued = await h.call<CommandRecord>("ack-9", "sendCommand", { name: "a" });
  await h.restart(() => dropAckColumns(h, "ack-9"));
  assert.equal((await record(h, "ack-9", queued.id)).ackTimeoutMs, 15_000);
  const dev = await online(h, "ack-9");
  await h.clock.advance(15_000);
  assert.deepEqual(cmdIds(dev), [queued.id, queued.id]);
});

/** What a bridge without schema migration 13 left: commands without their own ack timeout. */
function dropAckColumns(h: DeviceHarness, agentId: string): void {
  const db = new Database(path.join(h.dataDir, "agents", `${agentId}.db`));
  try {
    db.exec("ALTER TABLE commands DROP COLUMN ack_timeout_ms; ALTER TABLE commands DROP COLUMN ack_schedule_id");
    db.exec("UPDATE device_schema SET version = 12");
  } finally {
    db.close();
  }
}

// No alarm armed with the old timeout can find the command early with a session that has it: sessions do not outlive
// a restart, and the next delivery, to a new session, re-arms with the new timeout.
for (const greeted of [true, false]) {
  test(`a restart raising commandAckTimeoutMs times the next delivery by it (greeted: ${greeted})`, async () => {
    const options: Record<string, unknown> = { commandAckTimeoutMs: 10_000 };
    const agentId = `ack-13-${greeted}`;
    const h = harness(options);
    const cmd = await h.call<CommandRecord>(agentId, "sendCommand", { name: "a" });
    await h.restart(() => dropAckColumns(h, agentId));
    await online(h, agentId); // delivered now; its alarm is 10 s on
    options.commandAckTimeoutMs = 60_000;
    await h.clock.advance(5_000);
    await h.restart();
    const dev = greeted ? await online(h, agentId) : await h.open(agentId);
    // Greeted: the greeting delivered it 5 s on. Not: the old alarm, 10 s on, gives it to the session lacking it.
    const deliveredAfter = greeted ? 5_000 : 10_000;
    await h.clock.advance(5_000);
    assert.deepEqual(cmdIds(dev), [cmd.id]);
    await h.clock.advance(deliveredAfter + 60_000 - 10_000 - 1);
    assert.deepEqual(cmdIds(dev), [cmd.id], "not before the raised timeout");
    await h.clock.advance(1);
    assert.deepEqual(cmdIds(dev), [cmd.id, cmd.id]);
    assert.equal((await record(h, agentId, cmd.id)).attempts, 3);
  });
}

test("a bad ackTimeoutSeconds or commandAckTimeoutMs is refused naming the field", async () => {
  const h = harness();
  for (const bad of [-1, 1.5, "5", COMMAND_TTL_MAX_SECONDS + 1]) {
    const result = await h.runtime.call("ack-10", "sendCommand", [{ name: "a", ackTimeoutSeconds: bad }]);
    assert.ok(!result.ok);
    assert.equal(result.code, "BRIDGE_ERR_INVALID_ARGUMENT");
    assert.match(result.message, /^ackTimeoutSeconds /);
  }
  assert.deepEqual(await h.call<CommandRecord[]>("ack-10", "listCommands"), [], "nothing was queued");
  for (const bad of [-1, 1.5, "300000", COMMAND_TTL_MAX_SECONDS * 1000 + 1]) {
    assert.throws(
      () => resolveDeviceAgentOptions({ commandAckTimeoutMs: bad }),
      /device agent option commandAckTimeoutMs must be an integer/,
    );
  }
  assert.equal(resolveDeviceAgentOptions({ commandAckTimeoutMs: 0 }).commandAckTimeoutMs, 0);
});
