/**
 * Every round of a turn sends the system message (system prompt and device profile) its first round sent, so a hello
 * that changed the profile while the turn waited for an operator, across a restart too, changes neither the prefix
 * the engine cached nor the profile the model reasoned on; the next question sees the new profile. Against a scripted
 * engine, so the test decides when each round ends.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import type { DeviceHarness, RecordingDevice } from "./device-harness.ts";
import { finalFrame, oneSlotHarnesses, pendingApprovals } from "./reasoning-turns.ts";
import { type ScriptedCall, type ScriptedEngine, scriptedEngine } from "./scripted-engine.ts";

const harness = oneSlotHarnesses();

/** Sends question `q` as request `id` and returns the engine call of its first round. */
async function ask(h: DeviceHarness, dev: RecordingDevice, engine: ScriptedEngine, id: string, q: string) {
  const index = engine.calls.length;
  await h.send(dev, { channel: "reason", frame: { id, q } });
  return engine.call(index);
}

/** A device session greeted with firmware `fw` (and the capabilities of a firmware that changed them). */
async function greeted(h: DeviceHarness, agentId: string, fw: string): Promise<RecordingDevice> {
  const dev = await h.open(agentId, "cbor");
  const changed = fw !== "1.0";
  await h.send(dev, {
    channel: "hello",
    frame: { fw, codec: "cbor", sync: !changed, maxFrame: changed ? 4096 : 2048 },
  });
  return dev;
}

/** The system message a call sent. */
function systemOf(call: ScriptedCall): string {
  const [first] = call.request.messages;
  assert.equal(first.role, "system");
  return first.content;
}

/** Asserts that `later` sends `earlier`'s messages unchanged, then only appends, with the same tools. */
function assertExtends(earlier: ScriptedCall, later: ScriptedCall, what: string): void {
  const sent = earlier.request.messages;
  assert.ok(later.request.messages.length > sent.length, `${what}: the later round appends`);
  assert.deepEqual(later.request.messages.slice(0, sent.length), sent, `${what}: the same prefix`);
  assert.deepEqual(later.request.tools, earlier.request.tools, `${what}: the same tools`);
}

/**
 * Opens a turn on `agentId` (greeted with firmware 1.0) whose first round asks for a tool that needs an operator;
 * returns that round's call, the pending approval and the device session.
 */
async function parkedTurn(h: DeviceHarness, engine: ScriptedEngine, agentId: string) {
  const dev = await greeted(h, agentId, "1.0");
  const first = await ask(h, dev, engine, "act", "Open the door");
  assert.match(
    systemOf(first),
    /firmware: "1\.0"\n- codec: cbor\n- capabilities: sync=true stream=true maxFrame=2048$/,
  );
  first.reply({ tool: "send_command", args: '{"name":"open"}' });
  const [approvalId] = await pendingApprovals(h, agentId, 1);
  return { first, approvalId, dev };
}

/** Resolves `approvalId` and returns the call of the round that follows. */
async function resumed(h: DeviceHarness, engine: ScriptedEngine, agentId: string, approvalId: string) {
  const index = engine.calls.length;
  await h.call(agentId, "resolveApproval", approvalId, true);
  return engine.call(index);
}

/** Answers the resumed round, then asks a new question: its first round's call. */
async function nextQuestion(h: DeviceHarness, engine: ScriptedEngine, dev: RecordingDevice, round: ScriptedCall) {
  round.reply({ text: "The door is open." });
  await finalFrame(dev, "act");
  return ask(h, dev, engine, "next", "Is it closed again?");
}

test("a hello that changed the profile while a turn waited for an operator leaves that turn's prompt prefix as it was", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  const { first, approvalId, dev } = await parkedTurn(h, engine, "prof-s1");
  // The device updated its firmware and came back with another profile.
  await h.close(dev);
  const updated = await greeted(h, "prof-s1", "2.0");
  const second = await resumed(h, engine, "prof-s1", approvalId);
  assertExtends(first, second, "the round after the approval");
  assert.equal(systemOf(second), systemOf(first), "byte for byte");
  const next = await nextQuestion(h, engine, updated, second);
  assert.match(
    systemOf(next),
    /firmware: "2\.0"\n- codec: cbor\n- capabilities: sync=false stream=true maxFrame=4096$/,
  );
  next.reply({ text: "Yes." });
  await finalFrame(updated, "next");
});

test("across a restart, the turn resumed after an approval sends the system message it began with", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  const { first, approvalId } = await parkedTurn(h, engine, "prof-s2");
  await h.restart();
  const dev = await greeted(h, "prof-s2", "2.0");
  const second = await resumed(h, engine, "prof-s2", approvalId);
  assertExtends(first, second, "the round after the approval and the restart");
  const next = await nextQuestion(h, engine, dev, second);
  assert.match(systemOf(next), /firmware: "2\.0"/);
  next.reply({ text: "Yes." });
  await finalFrame(dev, "next");
});

test("a turn stored before its system message was kept sends the current profile, as before", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  const { first, approvalId } = await parkedTurn(h, engine, "prof-s3");
  await h.restart(() => {
    // What a bridge without schema migration 11 left: no system message with the turn.
    const db = new Database(path.join(h.dataDir, "agents", "prof-s3.db"));
    try {
      db.prepare("UPDATE reason_turns SET system_message = NULL").run();
    } finally {
      db.close();
    }
  });
  const dev = await greeted(h, "prof-s3", "2.0");
  const second = await resumed(h, engine, "prof-s3", approvalId);
  assert.match(systemOf(first), /firmware: "1\.0"/);
  assert.match(systemOf(second), /firmware: "2\.0"/);
  second.reply({ text: "The door is open." });
  await finalFrame(dev, "act");
});
