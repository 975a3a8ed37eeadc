/**
 * Which questions an `up/reason` refuses as BRIDGE_ERR_REASON_BUSY: a request id is taken while its turn has not
 * ended (running, waiting for an approval, queued for a slot), and at most `maxConcurrentTurns` turns of the device
 * run (viewers' turns count apart: device-reasoning-viewer-slots.test.ts). The agent
 * answers from what it knows of its open turns, so these pin that the answers stay those of the database through
 * every way a turn opens, parks, resumes and ends: approvals, a restart, cancellations, pruning, and events that
 * rolled back after changing a turn. Against a scripted engine, so the test decides when each round ends.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Value } from "../../codecs/frames.ts";
import type { InboundMessage } from "../../agents/host.ts";
import { DeviceAgent, type ResolveApprovalResult } from "../../agents/device/index.ts";
import type { Connection } from "../../agents/types.ts";
import { type DeviceHarness, type RecordingDevice, settle, waitFor } from "./device-harness.ts";
import { type ScriptedEngine, scriptedEngine } from "./scripted-engine.ts";
import { finalFrame, oneSlotHarnesses, pendingApprovals } from "./reasoning-turns.ts";

/** A question this agent's event fails on after handling it (its turn row written): the event rolls back. */
const FAIL_AFTER_QUESTION = "Fail this event after the question was handled";
/** An approval reason this agent's event fails on after the decision was applied: the event rolls back. */
const FAIL_AFTER_DECISION = "fail this event after the decision";

/** A DeviceAgent whose events a test can make fail after the reasoning path changed a turn. */
class RollbackDeviceAgent extends DeviceAgent {
  override onMessage(conn: Connection, message: InboundMessage): void | Promise<void> {
    const handled = super.onMessage(conn, message);
    if (message.channel !== "reason" || message.frame.q !== FAIL_AFTER_QUESTION) return handled;
    return Promise.resolve(handled).then(() => {
      throw new Error("the test fails this question's event after its rows were written");
    });
  }

  override resolveApproval(approvalId: Value, approve: Value, reason?: Value): ResolveApprovalResult {
    const result = super.resolveApproval(approvalId, approve, reason);
    if (reason === FAIL_AFTER_DECISION) throw new Error("the test fails this decision's event after it was applied");
    return result;
  }
}

const harness = oneSlotHarnesses(RollbackDeviceAgent);

/** How the agent answered a question: asked the engine (its call index), or refused it (the error's message). */
type Answer = { asked: number } | { busy: "running" | "open" } | { error: string };

/** Asks `q` under `id` and says how the agent answered it. */
async function ask(h: DeviceHarness, dev: RecordingDevice, engine: ScriptedEngine, id: string, q = "How warm is it?") {
  const calls = engine.calls.length;
  const errors = dev.frames("error").length;
  const result = await h.send(dev, { channel: "reason", frame: { id, q } });
  assert.deepEqual(result, { status: "committed" }, `the event of question ${id}`);
  const error = dev.frames("error").slice(errors)[0];
  let answer: Answer;
  if (error === undefined) {
    assert.equal(engine.calls.length, calls + 1, `question ${id} reached the engine`);
    answer = { asked: calls };
  } else if (error.code !== "BRIDGE_ERR_REASON_BUSY") {
    answer = { error: error.code };
  } else if (/still running/.test(error.msg)) {
    answer = { busy: "running" };
  } else {
    assert.match(error.msg, /is still open \(waiting for an approval or a free slot\)/);
    answer = { busy: "open" };
  }
  assert.equal(error?.id ?? id, id);
  return answer;
}

/** Asks `q` under `id`; its first round answers with a send_command call, so it waits for an operator. */
async function askForAction(h: DeviceHarness, dev: RecordingDevice, engine: ScriptedEngine, id: string) {
  const pending = h.runtime.directory.list("approval").filter((entry) => entry.agentId === dev.agentId).length;
  const answer = await ask(h, dev, engine, id, "Open the door");
  assert.ok("asked" in answer, `question ${id} was refused: ${JSON.stringify(answer)}`);
  (await engine.call(answer.asked)).reply({ tool: "send_command", args: '{"name":"open"}' });
  const ids = await pendingApprovals(h, dev.agentId, pending + 1);
  return ids.at(-1)!;
}

test("a request id stays taken while its turn runs, waits for an operator or for a slot, and is free once it ended", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  const dev = await h.open("open-t1", "cbor");
  const approvalId = await askForAction(h, dev, engine, "act");
  assert.deepEqual(await ask(h, dev, engine, "act"), { busy: "open" });
  // Parked for an operator: the slot is free.
  assert.deepEqual(await ask(h, dev, engine, "other"), { asked: 1 });
  assert.deepEqual(await ask(h, dev, engine, "other"), { busy: "running" });
  assert.deepEqual(await ask(h, dev, engine, "third"), { busy: "running" });
  // Approved while the slot is taken: queued, its id still taken.
  await h.call("open-t1", "resolveApproval", approvalId, true);
  assert.deepEqual(await ask(h, dev, engine, "act"), { busy: "open" });
  engine.calls[1].reply({ text: "21 degrees." });
  await finalFrame(dev, "other");
  // The queued turn took the slot its end freed.
  const resumed = await engine.call(2);
  assert.deepEqual(await ask(h, dev, engine, "act"), { busy: "running" });
  assert.deepEqual(await ask(h, dev, engine, "other"), { busy: "running" });
  resumed.reply({ text: "The door is open." });
  await finalFrame(dev, "act");
  assert.deepEqual(await ask(h, dev, engine, "act"), { asked: 3 });
  engine.calls[3].reply({ text: "Still 21." });
  await waitFor(() => dev.frames("reason").filter((f) => f.id === "act" && f.fin === true).length === 2, "act again");
});

test("after a restart a turn waiting for an operator still holds its id, and one cut off while running holds nothing", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  const dev = await h.open("open-t2", "cbor");
  await askForAction(h, dev, engine, "act");
  assert.deepEqual(await ask(h, dev, engine, "run"), { asked: 1 });
  await h.restart();
  const back = await h.open("open-t2", "cbor");
  assert.deepEqual(await ask(h, back, engine, "act"), { busy: "open" });
  // The running round was lost with the process: its turn ended (interrupted), so its id and its slot are free.
  assert.deepEqual(await ask(h, back, engine, "run"), { asked: 2 });
  assert.deepEqual(await ask(h, back, engine, "next"), { busy: "running" });
  engine.calls[2].reply({ text: "Fine." });
  await finalFrame(back, "run");
  const [approvalId] = await pendingApprovals(h, "open-t2", 1);
  await h.call("open-t2", "resolveApproval", approvalId, true);
  (await engine.call(3)).reply({ text: "The door is open." });
  await finalFrame(back, "act");
  assert.deepEqual(await ask(h, back, engine, "act"), { asked: 4 });
  engine.calls[4].reply({ text: "Done." });
});

test("a turn cancelled with the device's session, or with the viewer that asked it, frees its id and its slot", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  const dev = await h.open("open-t3", "cbor");
  assert.deepEqual(await ask(h, dev, engine, "gone"), { asked: 0 });
  await h.close(dev);
  assert.equal(engine.calls[0].aborted, true, "the device's round was cancelled with its session");
  const back = await h.open("open-t3", "cbor");
  assert.deepEqual(await ask(h, back, engine, "gone"), { asked: 1 });
  engine.calls[1].reply({ text: "Back." });
  await finalFrame(back, "gone");

  // A viewer's waiting turn holds its id against that viewer, its running turn the viewers' slot.
  const viewer = await h.open("open-t3", "json", "ws");
  await askForAction(h, viewer, engine, "look");
  assert.deepEqual(await ask(h, viewer, engine, "look"), { busy: "open" });
  assert.deepEqual(await ask(h, viewer, engine, "view"), { asked: 3 });
  const next = await h.open("open-t3", "json", "ws");
  assert.deepEqual(await ask(h, next, engine, "view"), { busy: "running" });
  await h.close(viewer);
  assert.equal(engine.calls[3].aborted, true, "the viewer's round was cancelled with its connection");
  assert.deepEqual(await ask(h, next, engine, "view"), { asked: 4 });
  assert.deepEqual(await ask(h, next, engine, "look"), { busy: "running" });
  engine.calls[4].reply({ text: "Viewed." });
  await finalFrame(next, "view");
});

test("pruning finished turns leaves a waiting turn's id taken", async () => {
  const engine = scriptedEngine();
  const h = harness(engine, { conversationMaxTurns: 1 });
  const dev = await h.open("open-t4", "cbor");
  const approvalId = await askForAction(h, dev, engine, "act");
  for (const id of ["q1", "q2", "q3"]) {
    const answer = await ask(h, dev, engine, id);
    assert.ok("asked" in answer, `${id}: ${JSON.stringify(answer)}`);
    engine.calls[answer.asked].reply({ text: `Answer ${id}.` });
    await finalFrame(dev, id);
  }
  const ids = (await h.call<{ turnId: string }[]>("open-t4", "getConversation", {})).map((m) => m.turnId);
  assert.ok(!ids.includes("turn-2"), `the oldest finished turns were pruned: ${[...new Set(ids)].join(",")}`);
  assert.deepEqual(await ask(h, dev, engine, "act"), { busy: "open" });
  assert.deepEqual(await ask(h, dev, engine, "q1"), { asked: 4 });
  await h.call("open-t4", "resolveApproval", approvalId, true);
  assert.deepEqual(await ask(h, dev, engine, "act"), { busy: "open" });
  engine.calls[4].reply({ text: "Again." });
  (await engine.call(5)).reply({ text: "The door is open." });
  await finalFrame(dev, "act");
  assert.deepEqual(await ask(h, dev, engine, "act"), { asked: 6 });
  engine.calls[6].reply({ text: "Done." });
});

test("a question whose event rolled back after its turn was written holds neither its id nor a slot", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  const dev = await h.open("open-t5", "cbor");
  const result = await h.send(dev, { channel: "reason", frame: { id: "lost", q: FAIL_AFTER_QUESTION } });
  assert.equal(result.status, "failed");
  assert.equal(engine.calls[0].aborted, true, "the rolled-back question's request was aborted");
  assert.deepEqual(await ask(h, dev, engine, "lost"), { asked: 1 });
  assert.deepEqual(await ask(h, dev, engine, "other"), { busy: "running" });
  engine.calls[1].reply({ text: "Found." });
  await finalFrame(dev, "lost");
});

test("a decision whose event rolled back leaves its turn waiting for an operator: its id taken, no slot held", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  const dev = await h.open("open-t6", "cbor");
  const approvalId = await askForAction(h, dev, engine, "act");
  // Applied (the turn resumed its next round at once, a slot being free), then rolled back with its event.
  const failed = await h.runtime.call("open-t6", "resolveApproval", [approvalId, true, FAIL_AFTER_DECISION]);
  assert.equal(failed.ok, false);
  await settle();
  assert.ok(
    engine.calls.slice(1).every((c) => c.aborted),
    "a round started by the rolled-back decision was aborted",
  );
  const calls = engine.calls.length;
  assert.deepEqual(await ask(h, dev, engine, "act"), { busy: "open" });
  assert.deepEqual(await ask(h, dev, engine, "other"), { asked: calls });
  await h.call("open-t6", "resolveApproval", approvalId, true);
  assert.deepEqual(await ask(h, dev, engine, "act"), { busy: "open" });
  engine.calls[calls].reply({ text: "21 degrees." });
  await finalFrame(dev, "other");
  (await engine.call(calls + 1)).reply({ text: "The door is open." });
  await finalFrame(dev, "act");
});
