/**
 * An operator's decision is answered with the approval as decided, whatever the turn does next: a turn that ends at
 * once when it resumes (no engine is configured any more) ends in the same event, and turns ending after it may prune
 * it with its approvals.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ResolveApprovalResult } from "../../agents/device/index.ts";
import type { ConversationEntry } from "../../agents/device/reasoning/conversation-store.ts";
import { scriptedEngine } from "./scripted-engine.ts";
import { finalFrame, oneSlotHarnesses, pendingApprovals } from "./reasoning-turns.ts";

const harness = oneSlotHarnesses();

test("resolveApproval returns the decided approval when its turn ends at once (kept: it finished last)", async () => {
  const engine = scriptedEngine();
  const h = harness(engine, { conversationMaxTurns: 1 });
  const dev = await h.open("apr-r1", "cbor");
  await h.send(dev, { channel: "reason", frame: { id: "act", q: "Open the door" } });
  (await engine.call(0)).reply({ tool: "send_command", args: '{"name":"open"}' });
  const [approvalId] = await pendingApprovals(h, "apr-r1", 1);
  await h.send(dev, { channel: "reason", frame: { id: "other", q: "How warm is it?" } });
  (await engine.call(1)).reply({ text: "21 degrees." });
  await finalFrame(dev, "other");
  // The bridge comes back without an engine: the approved turn fails as it resumes. Asked first but finished last,
  // it is kept beyond conversationMaxTurns and the other turn is pruned.
  h.options.engine = undefined;
  await h.restart();
  const back = await h.open("apr-r1", "cbor");
  await h.send(back, { channel: "hello", frame: { fw: "1.0" } });
  const result = await h.call<ResolveApprovalResult>("apr-r1", "resolveApproval", approvalId, true);
  assert.equal(result.status, "ok");
  assert.equal(result.status === "ok" ? result.approval?.id : undefined, approvalId);
  assert.equal(result.status === "ok" ? result.approval?.status : undefined, "approved");
  assert.deepEqual(
    back.frames("error").map((e) => [e.code, e.id]),
    [["BRIDGE_ERR_ENGINE_NOT_CONFIGURED", "act"]],
  );
  assert.equal((await finalFrame(back, "act")).fr, "error");
  const conversation = await h.call<ConversationEntry[]>("apr-r1", "getConversation", {});
  assert.deepEqual([...new Set(conversation.map((m) => m.turnId))], ["turn-1"]);
});
