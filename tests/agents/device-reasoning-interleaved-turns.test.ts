/**
 * Turns that overlap: one waits for an operator while others finish. What the conversation keeps goes by the order
 * turns finished in (a turn answered late is the newest, not the oldest asked). Against a scripted engine, so the
 * test decides when each round ends.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ChatMessage } from "../../agents/engine.ts";
import type { ConversationEntry } from "../../agents/device/reasoning/conversation-store.ts";
import type { DeviceHarness, RecordingDevice } from "./device-harness.ts";
import { type ScriptedEngine, scriptedEngine } from "./scripted-engine.ts";
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
