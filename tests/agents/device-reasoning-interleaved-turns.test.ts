/**
 * Turns that overlap: one waits for an operator or runs several rounds while others finish. What the conversation
 * keeps goes by the order turns finished in (a turn answered late is the newest, not the oldest asked), and every
 * round of a turn replays the history as it was when the turn began, so its prompt only grows and the engine's
 * prefix cache holds for all its rounds. Against a scripted engine, so the test decides when each round ends.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ChatMessage } from "../../agents/engine.ts";
import type { ConversationEntry } from "../../agents/device/reasoning/conversation-store.ts";
import type { DeviceHarness, RecordingDevice } from "./device-harness.ts";
import { type ScriptedCall, type ScriptedEngine, scriptedEngine } from "./scripted-engine.ts";
import { finalFrame, oneSlotHarnesses, pendingApprovals } from "./reasoning-turns.ts";

const harness = oneSlotHarnesses();

/** The questions a prompt carries, in its order (each user message before its context snapshot). */
function questionsOf(messages: readonly ChatMessage[]): string[] {
  return messages.filter((m) => m.role === "user").map((m) => (m.content ?? "").split("\n\n---\n")[0]);
}

/** Asks `q` under `id` and returns the engine call of its first round. */
async function ask(h: DeviceHarness, dev: RecordingDevice, engine: ScriptedEngine, id: string, q: string) {
  const index = engine.calls.length;
  await h.send(dev, { channel: "reason", frame: { id, q } });
  return engine.call(index);
}

/** Answers `call` with a read_shadow call (no approval needed) and returns the call of the turn's next round. */
async function nextRound(engine: ScriptedEngine, call: ScriptedCall): Promise<ScriptedCall> {
  const index = engine.calls.length;
  call.reply({ tool: "read_shadow" });
  return engine.call(index);
}

/** Asserts that `later` sends `earlier`'s messages unchanged, then only appends. */
function assertExtends(earlier: ScriptedCall, later: ScriptedCall, what: string): void {
  const sent = earlier.request.messages;
  assert.ok(later.request.messages.length > sent.length, `${what}: the later round appends`);
  assert.deepEqual(later.request.messages.slice(0, sent.length), sent, `${what}: the same prefix`);
}

test("a turn answered after a long wait for an operator outlives the turns that finished meanwhile", async () => {
  const engine = scriptedEngine();
  const h = harness(engine, { conversationMaxTurns: 2 });
  const dev = await h.open("late-i1", "cbor");
  (await ask(h, dev, engine, "act", "Open the door")).reply({ tool: "send_command", args: '{"name":"open"}' });
  const [approvalId] = await pendingApprovals(h, "late-i1", 1);
  for (const id of ["q1", "q2"]) {
    (await ask(h, dev, engine, id, `Question ${id}?`)).reply({ text: `Answer ${id}.` });
    await finalFrame(dev, id);
  }
  await h.call("late-i1", "resolveApproval", approvalId, true);
  (await engine.call(3)).reply({ text: "The door is open." });
  await finalFrame(dev, "act");
  const conversation = await h.call<ConversationEntry[]>("late-i1", "getConversation", {});
  assert.deepEqual(
    [...new Set(conversation.map((m) => m.turnId))],
    ["turn-1", "turn-3"],
    "the turn that finished first (q1) is the one pruned",
  );
  assert.equal(conversation.at(-1)?.content, "The door is open.");
  // The next prompt replays the history in the order the turns finished: the late answer is appended, not inserted.
  const next = await ask(h, dev, engine, "q3", "Is it open?");
  assert.deepEqual(questionsOf(next.request.messages), ["Question q2?", "Open the door", "Is it open?"]);
  assert.equal(next.request.messages.at(-2)?.content, "The door is open.");
  next.reply({ text: "Yes." });
  await finalFrame(dev, "q3");
});

test("two turns running side by side each replay the history they began with in every round", async () => {
  const engine = scriptedEngine();
  const h = harness(engine, { maxConcurrentTurns: 3 });
  const dev = await h.open("side-i2", "cbor");
  (await ask(h, dev, engine, "p", "How warm is it?")).reply({ text: "21 degrees." });
  await finalFrame(dev, "p");
  const a1 = await ask(h, dev, engine, "a", "Check the lamp");
  const b1 = await ask(h, dev, engine, "b", "Check the fan");
  const c1 = await ask(h, dev, engine, "c", "Is it raining?");
  // c finishes between the rounds of a and of b; a finishes between the rounds of b.
  c1.reply({ text: "No." });
  await finalFrame(dev, "c");
  const a2 = await nextRound(engine, a1);
  const b2 = await nextRound(engine, b1);
  a2.reply({ text: "The lamp is on." });
  await finalFrame(dev, "a");
  const b3 = await nextRound(engine, b2);
  b3.reply({ text: "The fan is off." });
  await finalFrame(dev, "b");
  assert.deepEqual(questionsOf(a1.request.messages), ["How warm is it?", "Check the lamp"]);
  assert.deepEqual(questionsOf(b1.request.messages), ["How warm is it?", "Check the fan"]);
  assertExtends(a1, a2, "a's second round");
  assertExtends(b1, b2, "b's second round");
  assertExtends(b2, b3, "b's third round");
  // A later question has them all, in the order they finished.
  const d = await ask(h, dev, engine, "d", "Anything else?");
  assert.deepEqual(questionsOf(d.request.messages), [
    "How warm is it?",
    "Is it raining?",
    "Check the lamp",
    "Check the fan",
    "Anything else?",
  ]);
  d.reply({ text: "No." });
  await finalFrame(dev, "d");
});

test("after an approval and a restart, a turn replays the history it began with, not the turns since", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  let dev = await h.open("wait-i3", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0" } });
  (await ask(h, dev, engine, "p", "How warm is it?")).reply({ text: "21 degrees." });
  await finalFrame(dev, "p");
  const first = await ask(h, dev, engine, "act", "Open the door");
  first.reply({ tool: "send_command", args: '{"name":"open"}' });
  const [approvalId] = await pendingApprovals(h, "wait-i3", 1);
  (await ask(h, dev, engine, "q", "Is it raining?")).reply({ text: "No." });
  await finalFrame(dev, "q");
  await h.restart();
  dev = await h.open("wait-i3", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0" } });
  const index = engine.calls.length;
  await h.call("wait-i3", "resolveApproval", approvalId, true);
  const resumed = await engine.call(index);
  assertExtends(first, resumed, "the round after the approval");
  assert.deepEqual(questionsOf(resumed.request.messages), ["How warm is it?", "Open the door"]);
  resumed.reply({ text: "The door is open." });
  await finalFrame(dev, "act");
});

test("a turn answered late, numbered below the history window, is in the next question's history", async () => {
  const engine = scriptedEngine();
  const h = harness(engine, { maxHistoryTurns: 8 });
  const dev = await h.open("late-i2", "cbor");
  (await ask(h, dev, engine, "act", "Open the door")).reply({ tool: "send_command", args: '{"name":"open"}' });
  const [approvalId] = await pendingApprovals(h, "late-i2", 1);
  // Turns 2 to 12 are answered while turn-1 waits: by their numbers, the window is past turn-1 for good.
  let previous: readonly ChatMessage[] = [];
  for (let n = 2; n <= 12; n++) {
    const call = await ask(h, dev, engine, `q${n}`, `Question q${n}?`);
    previous = call.request.messages;
    call.reply({ text: `Answer q${n}.` });
    await finalFrame(dev, `q${n}`);
  }
  await h.call("late-i2", "resolveApproval", approvalId, true);
  (await engine.call(12)).reply({ text: "The door is open." });
  await finalFrame(dev, "act");
  const next = await ask(h, dev, engine, "q13", "Is it open?");
  assert.deepEqual(questionsOf(next.request.messages), [
    "Question q9?",
    "Question q10?",
    "Question q11?",
    "Question q12?",
    "Open the door",
    "Is it open?",
  ]);
  assert.equal(next.request.messages.at(-2)?.content, "The door is open.");
  // Placed by the order turns finished in, the window did not jump for it: the previous prompt is this one's prefix.
  assert.deepEqual(next.request.messages.slice(0, previous.length), previous);
  next.reply({ text: "Yes." });
  await finalFrame(dev, "q13");
});
