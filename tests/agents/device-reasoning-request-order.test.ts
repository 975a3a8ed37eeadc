/**
 * A question's engine request leaves before its rows are written (reasoner.ts, after-request-write.ts): the engine is
 * asked, and its request is written, before the question's conversation row, the turn row and the round's task row
 * (an eager task's, written by the runtime as the event ends: agents/tasks.ts) exist; all three are still written
 * inside the event, so its outcome (what the broker turns into the device's PUBACK) follows them, and a write that
 * fails rolls the whole event back and aborts the request.
 *
 * undici writes a request on a reused keep-alive connection on the loop's check phase, from an immediate it queues
 * when the request is dispatched; the fake engine here queues one of its own when it is asked, and looks at the
 * agent's database from there too.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import type { ReasonStreamFrame } from "../../codecs/frames.ts";
import { DeviceAgent } from "../../agents/device/index.ts";
import { decodeValue } from "../../agents/device/values.ts";
import type { ChatOptions, ChatRequest, ReasoningEngine } from "../../agents/engine.ts";
import { DeviceHarness, type RecordingDevice, waitFor } from "./device-harness.ts";
import { type ScriptedEngine, scriptedEngine } from "./scripted-engine.ts";

/** A question's conversation row and a turn row, as a test reads them. */
interface QuestionRow {
  turnId: string;
  content: string;
  compacted: number;
}
interface TurnRow {
  id: string;
  requestId: string;
  status: string;
  context: string;
}
interface ReasonRows {
  questions: QuestionRow[];
  turns: TurnRow[];
  /** The kinds of the task rows (an engine round's is "device-reason"). */
  tasks: string[];
}

const NO_ROWS: ReasonRows = { questions: [], turns: [], tasks: [] };

/** The agents of the class below, by id, as last started: the fake engine reads their rows inside their events. */
const started = new Map<string, ProbedDeviceAgent>();

/** A DeviceAgent whose rows a test can read through its own connection, and whose turn INSERTs a test can refuse. */
class ProbedDeviceAgent extends DeviceAgent {
  override onStart(): void | Promise<void> {
    started.set(this.id, this);
    return super.onStart();
  }

  /** What the agent's own connection sees: the event's uncommitted writes included. */
  reasonRows(): ReasonRows {
    return {
      questions: this.sql<QuestionRow>`SELECT turn_id AS turnId, content, compacted FROM conversation
        WHERE role = 'user' ORDER BY id`,
      turns: this.sql<TurnRow>`SELECT id, request_id AS requestId, status, context FROM reason_turns ORDER BY rowid`,
      tasks: this.sql<{ kind: string }>`SELECT kind FROM _bridge_tasks ORDER BY started_at, id`.map((r) => r.kind),
    };
  }

  /** The stored last_seen (presence.ts), as the agent's own connection sees it; null while none. */
  lastSeenRow(): number | null {
    const rows = this.sql<{ value: Uint8Array }>`SELECT value FROM device_meta WHERE key = 'last_seen'`;
    const value = rows.length === 0 ? null : decodeValue(rows[0].value);
    return typeof value === "number" ? value : null;
  }

  /** Rows of background tasks (an engine round each, here). */
  taskRows(): number {
    return Number(this.sql<{ n: number }>`SELECT COUNT(*) AS n FROM _bridge_tasks`[0].n);
  }

  refuseTurnRows(): void {
    this.sql`CREATE TRIGGER refuse_turn_rows BEFORE INSERT ON reason_turns
      BEGIN SELECT RAISE(ABORT, 'turn rows refused by the test'); END`;
  }

  allowTurnRows(): void {
    this.sql`DROP TRIGGER refuse_turn_rows`;
  }

  refuseTaskRows(): void {
    this.sql`CREATE TRIGGER refuse_task_rows BEFORE INSERT ON _bridge_tasks
      BEGIN SELECT RAISE(ABORT, 'task rows refused by the test'); END`;
  }

  allowTaskRows(): void {
    this.sql`DROP TRIGGER refuse_task_rows`;
  }
}

/** One chat the agent asked for, and the rows its agent held when it asked and when the request was written. */
interface Asked {
  request: ChatRequest;
  options: ChatOptions;
  atCall: ReasonRows;
  atWrite: ReasonRows | undefined;
  /** The stored last_seen when asked and when the request was written. */
  lastSeen: { atCall: number | null; atWrite: number | null | undefined };
}

/** The scripted engine (its calls wait for the test), recording what each agent's database held when asked. */
function probingEngine(): { engine: ReasoningEngine; scripted: ScriptedEngine; asked: Asked[] } {
  const scripted = scriptedEngine();
  const asked: Asked[] = [];
  const engine: ReasoningEngine = {
    stream(request, options) {
      const agent = started.get(options.agentId);
      if (agent === undefined) throw new Error(`no started agent ${options.agentId}`);
      const seen: Asked = {
        request,
        options,
        atCall: agent.reasonRows(),
        atWrite: undefined,
        lastSeen: { atCall: agent.lastSeenRow(), atWrite: undefined },
      };
      asked.push(seen);
      // Where undici would write the request to its socket.
      setImmediate(() => {
        seen.atWrite = agent.reasonRows();
        seen.lastSeen.atWrite = agent.lastSeenRow();
      });
      return scripted.stream(request, options);
    },
  };
  return { engine, scripted, asked };
}

const harnesses: DeviceHarness[] = [];
after(async () => {
  for (const h of harnesses) await h.dispose();
});

function harness(engine: ReasoningEngine, config: Record<string, unknown> = {}): DeviceHarness {
  const h = new DeviceHarness({ engine, agentClass: ProbedDeviceAgent, agentConfig: { ProbedDeviceAgent: config } });
  harnesses.push(h);
  return h;
}

/** The rows an agent's database holds, read in an event of its own (after every event before it committed). */
function committedRows(h: DeviceHarness, agentId: string): Promise<ReasonRows> {
  return h.call<ReasonRows>(agentId, "reasonRows");
}

/** The rows an agent's database holds now, read at once through its connection (outside any event of it). */
function rowsNow(agentId: string): ReasonRows {
  const agent = started.get(agentId);
  if (agent === undefined) throw new Error(`no started agent ${agentId}`);
  return agent.reasonRows();
}

function finalFrame(dev: RecordingDevice, id: string): Promise<ReasonStreamFrame> {
  return waitFor(() => dev.frames("reason").find((f) => f.id === id && f.fin === true), `final reason frame ${id}`);
}

/** The last message of a request: the question with its context snapshot. */
function lastContent(request: ChatRequest): string {
  const last = request.messages.at(-1);
  assert.equal(last?.role, "user");
  return last.content ?? "";
}

test("the engine is asked and its request written before the question's, the turn's and the round's task rows exist; the event writes them, the question compacted as the prompt has it", async () => {
  const { engine, scripted, asked } = probingEngine();
  const h = harness(engine, { maxMessageChars: 300 });
  const dev = await h.open("order-r1");
  const question = `Why is it ${"so ".repeat(300)}warm in here?`;
  const result = await h.send(dev, { channel: "reason", frame: { id: "q1", q: question } });
  assert.deepEqual(result, { status: "committed" });
  assert.equal(asked.length, 1);
  assert.deepEqual(asked[0].atCall, NO_ROWS, "rows when the engine was asked");
  // The event's own immediate (after-request-write.ts) runs after the engine's, and its COMMIT after that: the
  // request was written (atWrite set) before the outcome came.
  assert.deepEqual(asked[0].atWrite, NO_ROWS, "rows when the request was written");

  const rows = await committedRows(h, "order-r1");
  assert.deepEqual(
    rows.turns.map((t) => [t.id, t.requestId, t.status]),
    [["turn-1", "q1", "running"]],
  );
  assert.deepEqual(
    rows.questions.map((q) => [q.turnId, q.compacted]),
    [["turn-1", 1]],
  );
  assert.deepEqual(rows.tasks, ["device-reason"]);
  const stored = rows.questions[0].content;
  assert.ok(stored.length <= 300, `a stored question of ${stored.length} characters`);
  assert.match(stored, new RegExp(`\\[compacted: the user message was ${question.length} characters; \\d+ from`));
  // The prompt carries the question exactly as stored, compaction note included, then the turn's context.
  assert.equal(lastContent(asked[0].request), `${stored}\n\n---\n${rows.turns[0].context}`);
  assert.match(lastContent(asked[0].request), /\[compacted: the user message was/);

  scripted.calls[0].reply({ text: "Because it is summer." });
  assert.equal((await finalFrame(dev, "q1")).fr, "stop");
});

test("a question after a quiet second: its last_seen row, due again, is written after the request, in the same event", async () => {
  const { engine, scripted, asked } = probingEngine();
  const h = harness(engine);
  const dev = await h.open("order-seen");
  const openedAt = h.clock.now();
  assert.equal(await h.call<number | null>("order-seen", "lastSeenRow"), openedAt, "written when the device connected");
  await h.clock.advance(5_000);
  const result = await h.send(dev, { channel: "reason", frame: { id: "q-seen", q: "Anything new?" } });
  assert.deepEqual(result, { status: "committed" });
  assert.deepEqual(asked[0].lastSeen, { atCall: openedAt, atWrite: openedAt }, "last_seen when asked and written");
  assert.equal(await h.call<number | null>("order-seen", "lastSeenRow"), openedAt + 5_000, "committed by the event");
  assert.equal((await h.call<{ lastSeen: number }>("order-seen", "getStatus")).lastSeen, openedAt + 5_000);

  scripted.calls[0].reply({ text: "Nothing." });
  assert.equal((await finalFrame(dev, "q-seen")).fr, "stop");
});

test("the event's outcome, which the device's PUBACK waits for, comes only once its rows are committed", async () => {
  const { engine, scripted } = probingEngine();
  const h = harness(engine);
  const dev = await h.open("order-r2");
  const outcome = h.runtime.deliver(dev.agentId, dev.connectionId, {
    channel: "reason",
    frame: { id: "q2", q: "Is the window open?" },
  });
  assert.ok(outcome.accepted);
  // Read in the outcome's own callback: nothing the agent queued (an immediate, a timer) can run before it.
  const atOutcome = await outcome.done.then((result) => ({ result, rows: rowsNow("order-r2") }));
  assert.deepEqual(atOutcome.result, { status: "committed" });
  assert.deepEqual(atOutcome.rows.questions, [{ turnId: "turn-1", content: "Is the window open?", compacted: 0 }]);
  assert.deepEqual(
    atOutcome.rows.turns.map((t) => [t.id, t.requestId, t.status]),
    [["turn-1", "q2", "running"]],
  );
  assert.deepEqual(atOutcome.rows.tasks, ["device-reason"]);

  (await scripted.call(0)).reply({ text: "No." });
  await finalFrame(dev, "q2");
});

test("a turn row that cannot be written after the request left rolls the event back, aborts the request, and skips no turn id", async () => {
  const { engine, scripted, asked } = probingEngine();
  const h = harness(engine);
  const dev = await h.open("order-r3");
  // A finished turn first, so that the refused one would have been turn-2.
  await h.send(dev, { channel: "reason", frame: { id: "before", q: "First question?" } });
  (await scripted.call(0)).reply({ text: "First answer." });
  await finalFrame(dev, "before");
  dev.clear();

  await h.call("order-r3", "refuseTurnRows");
  const result = await h.send(dev, { channel: "reason", frame: { id: "refused", q: "Second question?" } });
  // What the runtime hands the broker. BRIDGE_ERR_STORAGE is a code of a message that was not applied
  // (broker/uplink.ts): the device gets {code, msg, id: "refused"} as its error frame and no PUBACK, and its session
  // ends, so that it sends the request again once reconnected.
  assert.deepEqual(result, {
    status: "failed",
    code: "BRIDGE_ERR_STORAGE",
    message: "sql: turn rows refused by the test",
  });
  const refused = scripted.calls[1];
  assert.equal(asked[1].atCall.turns.length, 1, "the refused request was asked with the first turn's row only");
  assert.equal(refused.aborted, true, "the refused request was aborted");
  assert.equal(asked[1].options.signal?.aborted, true);
  // A failed event's frames are dropped: the runtime itself sends the device nothing about it.
  assert.deepEqual(dev.sent, []);
  const left = await committedRows(h, "order-r3");
  assert.deepEqual(
    left.questions.map((q) => [q.turnId, q.content]),
    [["turn-1", "First question?"]],
  );
  assert.deepEqual(
    left.turns.map((t) => [t.id, t.requestId, t.status]),
    [["turn-1", "before", "done"]],
  );
  assert.equal(await h.call("order-r3", "taskRows"), 0, "no task row of the refused round");

  await h.call("order-r3", "allowTurnRows");
  const again = await h.send(dev, { channel: "reason", frame: { id: "again", q: "Second question, again?" } });
  assert.deepEqual(again, { status: "committed" });
  (await scripted.call(2)).reply({ text: "Second answer." });
  assert.equal((await finalFrame(dev, "again")).fr, "stop");
  const rows = await committedRows(h, "order-r3");
  assert.deepEqual(
    rows.turns.map((t) => [t.id, t.requestId, t.status]),
    [
      ["turn-1", "before", "done"],
      ["turn-2", "again", "done"],
    ],
  );
  assert.deepEqual(
    rows.questions.map((q) => [q.turnId, q.content]),
    [
      ["turn-1", "First question?"],
      ["turn-2", "Second question, again?"],
    ],
  );
  assert.deepEqual(dev.frames("error"), []);
});

test("a round's task row that cannot be written after the request left rolls the event back, aborts the request, and skips no turn id", async () => {
  const { engine, scripted, asked } = probingEngine();
  const h = harness(engine);
  const dev = await h.open("order-r6");
  await h.call("order-r6", "refuseTaskRows");
  const result = await h.send(dev, { channel: "reason", frame: { id: "refused", q: "A question?" } });
  assert.deepEqual(result, {
    status: "failed",
    code: "BRIDGE_ERR_STORAGE",
    message: "INSERT INTO: task rows refused by the test",
  });
  assert.equal(asked.length, 1, "the request left before the row was refused");
  assert.deepEqual([asked[0].atCall, asked[0].atWrite], [NO_ROWS, NO_ROWS]);
  assert.equal(scripted.calls[0].aborted, true, "the refused round's request was aborted");
  assert.deepEqual(dev.sent, []);
  assert.deepEqual(await committedRows(h, "order-r6"), NO_ROWS, "the question and the turn rolled back with it");

  await h.call("order-r6", "allowTaskRows");
  const again = await h.send(dev, { channel: "reason", frame: { id: "again", q: "A question, again?" } });
  assert.deepEqual(again, { status: "committed" });
  (await scripted.call(1)).reply({ text: "An answer." });
  assert.equal((await finalFrame(dev, "again")).fr, "stop");
  const rows = await committedRows(h, "order-r6");
  assert.deepEqual(
    rows.turns.map((t) => [t.id, t.requestId, t.status]),
    [["turn-1", "again", "done"]],
  );
  assert.deepEqual(rows.tasks, [], "the finished round's row is gone");
  assert.deepEqual(dev.frames("error"), []);
});

test("two devices' questions delivered back to back both leave, and each agent writes its own rows", async () => {
  const { engine, scripted, asked } = probingEngine();
  const h = harness(engine);
  const a = await h.open("order-r4a");
  const b = await h.open("order-r4b");
  const sentA = h.runtime.deliver(a.agentId, a.connectionId, {
    channel: "reason",
    frame: { id: "qa", q: "Question A?" },
  });
  const sentB = h.runtime.deliver(b.agentId, b.connectionId, {
    channel: "reason",
    frame: { id: "qb", q: "Question B?" },
  });
  assert.ok(sentA.accepted && sentB.accepted);
  assert.deepEqual(await Promise.all([sentA.done, sentB.done]), [{ status: "committed" }, { status: "committed" }]);

  assert.deepEqual(asked.map((x) => x.options.agentId).sort(), ["order-r4a", "order-r4b"]);
  for (const x of asked) {
    assert.deepEqual(
      [x.atCall, x.atWrite],
      [NO_ROWS, NO_ROWS],
      `rows of ${x.options.agentId} when asked and when its request was written`,
    );
    const own = x.options.agentId === "order-r4a" ? "Question A?" : "Question B?";
    assert.ok(lastContent(x.request).startsWith(`${own}\n\n---\n`), `the prompt of ${x.options.agentId}`);
  }
  for (const [agentId, requestId, question] of [
    ["order-r4a", "qa", "Question A?"],
    ["order-r4b", "qb", "Question B?"],
  ]) {
    const rows = await committedRows(h, agentId);
    assert.deepEqual(rows.questions, [{ turnId: "turn-1", content: question, compacted: 0 }], agentId);
    assert.deepEqual(
      rows.turns.map((t) => [t.id, t.requestId, t.status]),
      [["turn-1", requestId, "running"]],
      agentId,
    );
  }

  for (const [i, x] of asked.entries()) scripted.calls[i].reply({ text: `Answer for ${x.options.agentId}.` });
  const [finA, finB] = await Promise.all([finalFrame(a, "qa"), finalFrame(b, "qb")]);
  assert.deepEqual([finA.fr, finB.fr], ["stop", "stop"]);
  assert.deepEqual(
    a
      .frames("reason")
      .filter((f) => f.fin !== true)
      .map((f) => f.text)
      .join(""),
    "Answer for order-r4a.",
  );
  assert.deepEqual(
    b
      .frames("reason")
      .filter((f) => f.fin !== true)
      .map((f) => f.text)
      .join(""),
    "Answer for order-r4b.",
  );
});

test("questions of several devices arriving together: every request is written before any of their rows", async () => {
  // A fleet's questions that arrive in one turn of the loop (one poll phase) each queue their request's write for
  // its check phase: no request may wait there for the rows and COMMIT of the questions ahead of it.
  const scripted = scriptedEngine();
  const ids = ["order-b1", "order-b2", "order-b3"];
  /** Per request, in the order written: how many turn rows each agent held then (uncommitted ones included). */
  const rowsAtWrites: number[][] = [];
  const engine: ReasoningEngine = {
    stream(request, options) {
      setImmediate(() => rowsAtWrites.push(ids.map((id) => rowsNow(id).turns.length)));
      return scripted.stream(request, options);
    },
  };
  const h = harness(engine);
  const devs = [];
  for (const id of ids) devs.push(await h.open(id));
  const outcomes = devs.map((dev, i) =>
    h.runtime.deliver(dev.agentId, dev.connectionId, { channel: "reason", frame: { id: `q${i}`, q: "Warm?" } }),
  );
  const results = await Promise.all(outcomes.map((outcome) => (outcome.accepted ? outcome.done : undefined)));
  assert.deepEqual(
    results,
    ids.map(() => ({ status: "committed" })),
  );
  assert.deepEqual(rowsAtWrites, [
    [0, 0, 0],
    [0, 0, 0],
    [0, 0, 0],
  ]);
  for (const id of ids) assert.equal((await committedRows(h, id)).turns.length, 1, id);
  for (const call of scripted.calls) call.reply({ text: "Yes." });
  for (const [i, dev] of devs.entries()) assert.equal((await finalFrame(dev, `q${i}`)).fr, "stop");
});

test("a second question of the device delivered while the first one's rows are still unwritten is refused as busy", async () => {
  const { engine, scripted, asked } = probingEngine();
  const h = harness(engine);
  const dev = await h.open("order-r5");
  // All three reach the mailbox before the first event's rows are written (after its request left): the events of
  // one agent run one at a time, so the second and third see the first's turn row and are refused, not asked.
  const delivered = ["first", "second", "first"].map((id, i) =>
    h.runtime.deliver(dev.agentId, dev.connectionId, { channel: "reason", frame: { id, q: `Question ${i}?` } }),
  );
  assert.ok(delivered.every((d) => d.accepted));
  assert.deepEqual(await Promise.all(delivered.map((d) => d.done)), [
    { status: "committed" },
    { status: "committed" },
    { status: "committed" },
  ]);
  assert.equal(asked.length, 1, "only the first question reached the engine");
  assert.deepEqual(
    dev.frames("error").map((e) => [e.code, e.id]),
    [
      ["BRIDGE_ERR_REASON_BUSY", "second"],
      ["BRIDGE_ERR_REASON_BUSY", "first"],
    ],
  );
  const rows = await committedRows(h, "order-r5");
  assert.deepEqual(
    rows.turns.map((t) => [t.id, t.requestId, t.status]),
    [["turn-1", "first", "running"]],
  );
  assert.deepEqual(
    rows.questions.map((q) => q.content),
    ["Question 0?"],
  );
  scripted.calls[0].reply({ text: "One." });
  assert.equal((await finalFrame(dev, "first")).fr, "stop");
});
