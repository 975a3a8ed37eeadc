/**
 * A tool call whose arguments are not a JSON object (a model's glitch, or a call cut by max_tokens) is told to the
 * model as a tool error, and is sent back to the engine in later rounds with arguments that are a JSON object: vLLM
 * parses every replayed call's arguments (json.loads) before its chat template runs and refuses the whole request
 * when they are not JSON, which would fail the turn instead of letting the model correct itself.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ChatMessage } from "../../agents/engine.ts";
import type { ConversationEntry } from "../../agents/device/index.ts";
import { scriptedEngine } from "./scripted-engine.ts";
import { finalFrame, oneSlotHarnesses } from "./reasoning-turns.ts";

const harness = oneSlotHarnesses();

/** The arguments of every tool call the assistant messages of `messages` carry. */
function replayedArguments(messages: readonly ChatMessage[]): string[] {
  return messages.flatMap((m) => (m.role === "assistant" ? (m.toolCalls ?? []).map((c) => c.arguments) : []));
}

function isJsonObject(text: string): boolean {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

test("tool calls with malformed or empty arguments are replayed to the engine as JSON objects", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  const dev = await h.open("args-t1", "cbor");
  await h.send(dev, { channel: "reason", frame: { id: "q", q: "How much co2?" } });
  (await engine.call(0)).reply({ tool: "read_telemetry", args: '{"metric": "co2", "limit": ' });
  const second = await engine.call(1);
  const toolResult = second.request.messages.at(-1);
  assert.equal(toolResult?.role, "tool");
  assert.match(toolResult?.content ?? "", /arguments must be a JSON object/, "the model is told what was wrong");
  second.reply({ tool: "read_shadow", args: "" });
  const third = await engine.call(2);
  third.reply({ text: "About 800 ppm." });
  assert.equal((await finalFrame(dev, "q")).fr, "stop");

  const replayed = replayedArguments(third.request.messages);
  assert.equal(replayed.length, 2);
  for (const args of replayed) assert.ok(isJsonObject(args), `replayed arguments ${args} are a JSON object`);
  assert.match(replayed[0], /metric/, "the malformed text is kept in the note, not dropped");
  // The next question's history carries the turn as stored: the same arguments.
  await h.send(dev, { channel: "reason", frame: { id: "next", q: "And now?" } });
  const fourth = await engine.call(3);
  assert.deepEqual(replayedArguments(fourth.request.messages), replayed);
  fourth.reply({ text: "The same." });
  await finalFrame(dev, "next");
  const conversation = await h.call<ConversationEntry[]>("args-t1", "getConversation", {});
  assert.deepEqual(
    conversation.flatMap((m) => (m.toolCalls ?? []).map((c) => c.arguments)),
    replayed,
  );
});
