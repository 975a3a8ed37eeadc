/**
 * What a streamed reasoning turn costs the agent's database: the turn's row is written once, already running its
 * first round, and that turn is cached for the round, so no statement re-reads a turn, a task row or the queue while
 * the answer streams, and the request reads back nothing it just wrote.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ConversationEntry } from "../../agents/device/reasoning/conversation-store.ts";
import { DeviceHarness, useSimulatedEngine, waitFor } from "./device-harness.ts";
import { statementSpy } from "./statement-spy.ts";

const env = useSimulatedEngine();

/** Opens a device that said hello, asks `questions` one after the other, and returns the statements they ran. */
async function spiedQuestions(agentId: string, questions: string[], max: number) {
  const h = new DeviceHarness({ engine: env.engine, agentConfig: { DeviceAgent: { maxHistoryTurns: 0 } } });
  env.harnesses.push(h);
  const dev = await h.open(agentId, "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0.0" } });
  const { spy, restore } = statementSpy();
  try {
    spy.on = true;
    for (const id of questions) {
      await h.send(dev, { channel: "reason", frame: { id, q: "How warm is it?", max } });
      await waitFor(() => dev.frames("reason").find((f) => f.id === id && f.fin === true), `final frame of ${id}`);
    }
    spy.on = false;
    return { h, dev, executed: [...spy.executed] };
  } finally {
    restore();
  }
}

test("a streamed turn re-reads no turn or task row and asks the queue at most once, however many chunks it sends", async () => {
  const { dev, executed } = await spiedQuestions("sql-r1", ["q1"], 48);
  const chunks = dev.frames("reason").filter((f) => f.fin !== true);
  assert.ok(chunks.length > 1, `streamed in ${chunks.length} chunks`);
  const rereads = executed.filter((s) => /^SELECT \* FROM (reason_turns|_bridge_tasks) WHERE id/.test(s.trim()));
  assert.deepEqual(rereads, [], `statements of the turn: ${executed.length}`);
  // The queue is asked at most once (when the agent's pending mark may go, as it leaves memory); never per chunk.
  const queueReads = executed.filter((s) => /FROM _bridge_queue/.test(s));
  assert.ok(queueReads.length <= 1, `${queueReads.length} queue reads for ${chunks.length} chunks`);
});

test("an up/reason writes its turn row once and reads back nothing it just wrote", async () => {
  const { h, executed } = await spiedQuestions("sql-r2", ["q1", "q2"], 8);
  const count = (pattern: RegExp) => executed.filter((s) => pattern.test(s)).length;
  assert.equal(count(/INSERT INTO reason_turns/), 2);
  // The first round is written with the row: no UPDATE starts it, and its messages are not read back.
  assert.equal(count(/SET status = 'running', round = round \+ 1/), 0);
  assert.equal(count(/FROM conversation WHERE turn_id/), 0);
  // The next turn id is read once per agent in memory, not per request.
  assert.ok(count(/MAX\(CAST\(substr\(id, 6\)/) <= 1, "turn id scans");
  // The prompt's device context reads both shadow documents in one statement, and only when the shadow may have
  // changed since the last question: the second question reads nothing of it.
  assert.equal(count(/FROM shadow WHERE doc = /), 0);
  assert.equal(count(/FROM shadow\s+WHERE doc IN/), 1);
  // The turns that have not ended (busy ids, the running-turn bound) are read at most once per agent in memory.
  assert.ok(count(/FROM reason_turns\s+WHERE status IN \('running', 'awaiting_approval', 'queued'\)/) <= 1);
  const conversation = await h.call<ConversationEntry[]>("sql-r2", "getConversation", {});
  assert.deepEqual([...new Set(conversation.map((m) => m.turnId))], ["turn-1", "turn-2"]);
});

test("a question reads no telemetry when the store's newest reading id says there is none to list", async () => {
  const h = new DeviceHarness({ engine: env.engine });
  env.harnesses.push(h);
  const dev = await h.open("sql-r3", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0.0" } });
  const { spy, restore } = statementSpy();
  /** Asks `id`; the reads of stored readings its event ran, and the telemetry part of its context. */
  const ask = async (id: string) => {
    spy.executed.length = 0;
    spy.on = true;
    await h.send(dev, { channel: "reason", frame: { id, q: "How warm is it?", max: 8 } });
    spy.on = false;
    await waitFor(() => dev.frames("reason").find((f) => f.id === id && f.fin === true), `final frame of ${id}`);
    const body = env.sim.requests().at(-1)?.body as { messages: Array<{ content: string }> };
    const context = body.messages.at(-1)?.content ?? "";
    return {
      reads: spy.executed.filter((s) => /SELECT id, ts, shape, vals FROM telemetry_rows/.test(s)).length,
      telemetry: context.slice(context.search(/(Recent telemetry|Telemetry since)/)),
    };
  };
  try {
    // Nothing ever stored.
    assert.deepEqual(await ask("q1"), { reads: 0, telemetry: "Recent telemetry: none" });
    await h.send(dev, { channel: "telemetry", frame: { r: { temp: 21.5 } } });
    const listed = await ask("q2");
    assert.equal(listed.reads, 1);
    assert.match(listed.telemetry, /^Telemetry since the previous question \(newest first\):\n- \S+ temp=21\.5$/);
    // Nothing stored since the previous question's snapshot, which the history carries.
    assert.deepEqual(await ask("q3"), { reads: 0, telemetry: "Telemetry since the previous question: none" });
  } finally {
    restore();
  }
});

test("the history window is placed without a scan of the finished turns once the agent knows the newest done one", async () => {
  const h = new DeviceHarness({ engine: env.engine });
  env.harnesses.push(h);
  const dev = await h.open("sql-r4", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0.0" } });
  const { spy, restore } = statementSpy();
  try {
    spy.on = true;
    for (const id of ["q1", "q2", "q3"]) {
      await h.send(dev, { channel: "reason", frame: { id, q: `Question ${id}?`, max: 8 } });
      await waitFor(() => dev.frames("reason").find((f) => f.id === id && f.fin === true), `final frame of ${id}`);
    }
    spy.on = false;
    const scans = spy.executed.filter((s) => /FROM reason_turns\s+WHERE \+status = 'done'/.test(s));
    assert.ok(scans.length <= 1, `${scans.length} scans for the newest done turn`);
    // The third question's prompt carries the first two as its history.
    const body = env.sim.requests().at(-1)?.body as { messages: Array<{ role: string; content: string }> };
    const questions = body.messages.filter((m) => m.role === "user").map((m) => m.content.split("\n\n---\n")[0]);
    assert.deepEqual(questions, ["Question q1?", "Question q2?", "Question q3?"]);
  } finally {
    restore();
  }
});
