/**
 * A reasoning turn never stays "running" without its round. When the hook that ends a round fails (its writes roll
 * back, the runtime removes the round's task row all the same), the agent ends the turn at once with
 * BRIDGE_ERR_REASON_FAILED and a final frame with fr "error"; when that cannot be written either, the turn is
 * stranded, and the agent ends it when it next starts or, at the latest, when the device's next question would be
 * refused as busy. Turns waiting for an operator or queued for a slot have no round and are left alone. Faults are
 * made by triggers that refuse one kind of write, against a scripted engine, so the test decides when rounds end.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { DeviceAgent } from "../../agents/device/index.ts";
import { type DeviceHarness, type RecordingDevice, settle, waitFor } from "./device-harness.ts";
import { type ScriptedEngine, scriptedEngine } from "./scripted-engine.ts";
import { finalFrame, oneSlotHarnesses, pendingApprovals } from "./reasoning-turns.ts";

interface TurnRow {
  id: string;
  requestId: string;
  status: string;
  finishReason: string | null;
}

/** The `event` of every onError call of the agents below, by agent id. */
const errors = new Map<string, string[]>();

/** A DeviceAgent whose turn ends, or pruning, a test can refuse, and whose onError calls it records. */
class FaultyDeviceAgent extends DeviceAgent {
  override onError(error: unknown, context: { event: string }): void {
    const seen = errors.get(this.id) ?? [];
    seen.push(context.event);
    errors.set(this.id, seen);
    super.onError(error, context);
  }

  /**
   * Refuses the writes that end a turn: "done" an answered one; "stop" one cut off by a stop (cancelled with the
   * device's session, or interrupted).
   */
  refuseTurnEnds(which: "done" | "stop"): void {
    if (which === "done") {
      this.sql`CREATE TRIGGER refuse_turn_ends BEFORE UPDATE OF status ON reason_turns WHEN NEW.status = 'done'
        BEGIN SELECT RAISE(ABORT, 'turn ends refused by the test'); END`;
    } else {
      this.sql`CREATE TRIGGER refuse_turn_ends BEFORE UPDATE OF status ON reason_turns
        WHEN NEW.status IN ('cancelled', 'interrupted')
        BEGIN SELECT RAISE(ABORT, 'turn ends refused by the test'); END`;
    }
  }

  /** Refuses every write that ends a turn, whatever its status: the agent cannot end a turn at all. */
  refuseAllTurnEnds(): void {
    this.sql`CREATE TRIGGER refuse_all_turn_ends BEFORE UPDATE OF status ON reason_turns
      WHEN NEW.status IN ('done', 'failed', 'cancelled', 'interrupted')
      BEGIN SELECT RAISE(ABORT, 'every turn end refused by the test'); END`;
  }

  /** Refuses the deletes of pruning (finished turns beyond conversationMaxTurns). */
  refusePruning(): void {
    this.sql`CREATE TRIGGER refuse_pruning BEFORE DELETE ON reason_turns
      BEGIN SELECT RAISE(ABORT, 'pruning refused by the test'); END`;
  }

  allowAll(): void {
    this.sql`DROP TRIGGER IF EXISTS refuse_turn_ends`;
    this.sql`DROP TRIGGER IF EXISTS refuse_all_turn_ends`;
    this.sql`DROP TRIGGER IF EXISTS refuse_pruning`;
  }

  turnRows(): TurnRow[] {
    return this.sql<TurnRow>`SELECT id, request_id AS requestId, status, finish_reason AS finishReason
      FROM reason_turns ORDER BY rowid`;
  }

  taskRows(): number {
    return Number(this.sql<{ n: number }>`SELECT COUNT(*) AS n FROM _bridge_tasks`[0].n);
  }
}

const harness = oneSlotHarnesses(FaultyDeviceAgent);

function turns(h: DeviceHarness, agentId: string): Promise<[string, string, string][]> {
  return h
    .call<TurnRow[]>(agentId, "turnRows")
    .then((rows) => rows.map((r): [string, string, string] => [r.id, r.requestId, r.status]));
}

/** Asks `q` under `id`: the engine call it made, or the error code it was refused with. */
async function ask(h: DeviceHarness, dev: RecordingDevice, engine: ScriptedEngine, id: string, q = "How warm?") {
  const calls = engine.calls.length;
  const refusals = dev.frames("error").filter((e) => e.id === id && e.code === "BRIDGE_ERR_REASON_BUSY").length;
  assert.deepEqual(await h.send(dev, { channel: "reason", frame: { id, q } }), { status: "committed" });
  if (dev.frames("error").filter((e) => e.id === id && e.code === "BRIDGE_ERR_REASON_BUSY").length > refusals) {
    return "busy";
  }
  assert.equal(engine.calls.length, calls + 1, `question ${id} reached the engine`);
  return engine.calls[calls];
}

/** Asks `q` under `id`, which must reach the engine: its engine call. */
async function asked(h: DeviceHarness, dev: RecordingDevice, engine: ScriptedEngine, id: string, q?: string) {
  const call = await ask(h, dev, engine, id, q);
  if (call === "busy") throw new Error(`question ${id} was refused as busy`);
  return call;
}

/** Waits until `agentId`'s onError heard of `count` failures; their events. */
function failures(agentId: string, count: number): Promise<string[]> {
  return waitFor(() => {
    const seen = errors.get(agentId) ?? [];
    return seen.length >= count ? [...seen] : undefined;
  }, `${count} failures of ${agentId}`);
}

test("a turn whose end cannot be written ends failed at once: the device gets its error and final frame, and may ask again", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  const dev = await h.open("stranded-s1", "cbor");
  await h.call("stranded-s1", "refuseTurnEnds", "done");
  const first = await asked(h, dev, engine, "q1");
  first.reply({ text: "21 degrees." });
  const fin = await finalFrame(dev, "q1");
  // The chunk took seq 0; the final frame the failed hook took seq 1 for never left, and the one sent has it.
  assert.deepEqual(
    dev.frames("reason").map((f) => [f.seq, f.fin === true ? "fin" : f.text]),
    [
      [0, "21 degrees."],
      [1, "fin"],
    ],
  );
  assert.equal(fin.fr, "error");
  assert.deepEqual(
    dev.frames("error").map((e) => [e.code, e.id]),
    [["BRIDGE_ERR_REASON_FAILED", "q1"]],
  );
  // The hook's failure was told once; its writes (the answer) rolled back; the round's task is done with.
  assert.deepEqual(errors.get("stranded-s1"), ["onTaskDone"]);
  assert.deepEqual(await turns(h, "stranded-s1"), [["turn-1", "q1", "failed"]]);
  assert.equal(await h.call("stranded-s1", "taskRows"), 0);
  const conversation = await h.call<{ role: string }[]>("stranded-s1", "getConversation", {});
  assert.deepEqual(
    conversation.map((m) => m.role),
    ["user"],
  );

  await h.call("stranded-s1", "allowAll");
  const again = await asked(h, dev, engine, "q1", "And now?");
  again.reply({ text: "22 degrees." });
  assert.equal((await waitFor(() => dev.frames("reason").filter((f) => f.fin === true)[1], "second final")).fr, "stop");
  assert.deepEqual(await turns(h, "stranded-s1"), [
    ["turn-1", "q1", "failed"],
    ["turn-2", "q1", "done"],
  ]);
});

test("a turn whose pruning fails after its end, done or failed, still ends; pruning catches up once it works", async () => {
  const engine = scriptedEngine();
  const h = harness(engine, { conversationMaxTurns: 1 });
  const dev = await h.open("stranded-s2", "cbor");
  const first = await asked(h, dev, engine, "q1");
  first.reply({ text: "One." });
  assert.equal((await finalFrame(dev, "q1")).fr, "stop");

  await h.call("stranded-s2", "refusePruning");
  const second = await asked(h, dev, engine, "q2");
  second.reply({ text: "Two." });
  assert.equal((await finalFrame(dev, "q2")).fr, "error");
  // onTaskFailed ends a turn the same way: its pruning fails too.
  const third = await asked(h, dev, engine, "q3");
  third.fail(new Error("the engine went away"));
  assert.equal((await finalFrame(dev, "q3")).fr, "error");
  assert.deepEqual(
    dev.frames("error").map((e) => [e.code, e.id]),
    [
      ["BRIDGE_ERR_REASON_FAILED", "q2"],
      ["BRIDGE_ERR_REASON_FAILED", "q3"],
    ],
  );
  assert.deepEqual(errors.get("stranded-s2"), ["onTaskDone", "onTaskFailed"]);
  assert.deepEqual(await turns(h, "stranded-s2"), [
    ["turn-1", "q1", "done"],
    ["turn-2", "q2", "failed"],
    ["turn-3", "q3", "failed"],
  ]);

  await h.call("stranded-s2", "allowAll");
  const fourth = await asked(h, dev, engine, "q4");
  fourth.reply({ text: "Four." });
  assert.equal((await finalFrame(dev, "q4")).fr, "stop");
  assert.deepEqual(await turns(h, "stranded-s2"), [["turn-4", "q4", "done"]]);
});

test("a turn the agent could not end at all is ended by the device's next question, whose busy check finds it has no round", async () => {
  const engine = scriptedEngine();
  const h = harness(engine, { maxConcurrentTurns: 2 });
  const dev = await h.open("stranded-s3", "cbor");
  await h.call("stranded-s3", "refuseAllTurnEnds");
  const first = await asked(h, dev, engine, "q1");
  first.reply({ text: "Lost." });
  // The hook failed, and so did ending the turn after it: each told once, and nothing tries again on its own.
  assert.deepEqual(await failures("stranded-s3", 2), ["onTaskDone", "onTaskDone"]);
  await settle();
  assert.deepEqual(errors.get("stranded-s3"), ["onTaskDone", "onTaskDone"]);
  assert.equal(await h.call("stranded-s3", "taskRows"), 0);
  assert.deepEqual(await turns(h, "stranded-s3"), [["turn-1", "q1", "running"]]);
  assert.deepEqual(
    dev.frames("reason").filter((f) => f.fin === true),
    [],
  );

  // Still refused: the question under another id has a free slot and is asked, the turn left as it is.
  const other = await asked(h, dev, engine, "q2");
  await h.call("stranded-s3", "allowAll");
  // The same id would be refused as running: the check finds the turn has no round, ends it, and asks.
  const again = await asked(h, dev, engine, "q1", "Again?");
  const fin = await finalFrame(dev, "q1");
  assert.deepEqual([fin.seq, fin.fr], [1, "error"]);
  assert.deepEqual(
    dev.frames("error").map((e) => [e.code, e.id]),
    [["BRIDGE_ERR_REASON_FAILED", "q1"]],
  );
  assert.deepEqual(await turns(h, "stranded-s3"), [
    ["turn-1", "q1", "failed"],
    ["turn-2", "q2", "running"],
    ["turn-3", "q1", "running"],
  ]);
  // Both slots are taken by turns with rounds: the bound holds.
  assert.equal(await ask(h, dev, engine, "q4"), "busy");
  other.reply({ text: "Two." });
  again.reply({ text: "One again." });
  await waitFor(() => dev.frames("reason").filter((f) => f.fin === true).length === 3, "three final frames");
  assert.deepEqual(errors.get("stranded-s3"), ["onTaskDone", "onTaskDone"]);
});

test("a stranded turn holding the device's only slot is ended by its next question, which then runs", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  const dev = await h.open("stranded-s4", "cbor");
  await h.call("stranded-s4", "refuseAllTurnEnds");
  const first = await asked(h, dev, engine, "q1");
  first.reply({ text: "Lost." });
  await failures("stranded-s4", 2);
  // While nothing can end it, the question is refused as before (its event commits) and onError hears why.
  assert.equal(await ask(h, dev, engine, "q2"), "busy");
  assert.deepEqual(errors.get("stranded-s4"), ["onTaskDone", "onTaskDone", "message"]);
  await h.call("stranded-s4", "allowAll");
  const second = await asked(h, dev, engine, "q2");
  assert.equal((await finalFrame(dev, "q1")).fr, "error");
  second.reply({ text: "Two." });
  assert.equal((await finalFrame(dev, "q2")).fr, "stop");
  assert.deepEqual(await turns(h, "stranded-s4"), [
    ["turn-1", "q1", "failed"],
    ["turn-2", "q2", "done"],
  ]);
});

test("after a restart the agent ends a stranded turn as it starts, and leaves turns waiting for an operator or a slot alone", async () => {
  const engine = scriptedEngine();
  const h = harness(engine, { toolsRequiringApproval: ["send_command"] });
  const dev = await h.open("stranded-s5", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0.0" } });
  const act = async (id: string, count: number) => {
    const call = await asked(h, dev, engine, id, "Open the door");
    call.reply({ tool: "send_command", args: '{"name":"open"}' });
    return (await pendingApprovals(h, "stranded-s5", count)).at(-1)!;
  };
  // q1 and q2 wait for an operator (no slot held); q3 runs; q1, approved, waits for q3's slot.
  const approval = await act("q1", 1);
  await act("q2", 2);
  const running = await asked(h, dev, engine, "q3");
  await h.call("stranded-s5", "resolveApproval", approval, true);
  await h.call("stranded-s5", "refuseAllTurnEnds");
  running.reply({ text: "Lost." });
  await failures("stranded-s5", 2);
  await h.call("stranded-s5", "allowAll");
  assert.deepEqual(await turns(h, "stranded-s5"), [
    ["turn-1", "q1", "queued"],
    ["turn-2", "q2", "awaiting_approval"],
    ["turn-3", "q3", "running"],
  ]);
  const calls = engine.calls.length;

  await h.restart();
  // The first event of the new process wakes the agent: its start ended the stranded turn, and only that one.
  assert.deepEqual(await turns(h, "stranded-s5"), [
    ["turn-1", "q1", "queued"],
    ["turn-2", "q2", "awaiting_approval"],
    ["turn-3", "q3", "failed"],
  ]);
  assert.equal(engine.calls.length, calls, "no round started for a session of the old process");
  const back = await h.open("stranded-s5", "cbor");
  await h.send(back, { channel: "hello", frame: { fw: "1.0.0" } });
  // Greeted, the device gets the queued turn's next round in the slot the stranded turn held.
  const resumed = await engine.call(calls);
  assert.equal(await ask(h, back, engine, "q4"), "busy");
  resumed.reply({ text: "The door is open." });
  assert.equal((await finalFrame(back, "q1")).fr, "stop");
  assert.deepEqual(await turns(h, "stranded-s5"), [
    ["turn-1", "q1", "done"],
    ["turn-2", "q2", "awaiting_approval"],
    ["turn-3", "q3", "failed"],
  ]);
  assert.equal((await pendingApprovals(h, "stranded-s5", 1)).length, 1);
});

test("a turn whose interruption cannot be written at a restart ends failed instead, in the same start", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  const dev = await h.open("stranded-s6", "cbor");
  await asked(h, dev, engine, "q1");
  // At the start, the device's session of the old process is closed, which cancels the turn: that write fails,
  // and so does the one of the round's interruption reported after it.
  await h.call("stranded-s6", "refuseTurnEnds", "stop");
  await h.restart();
  assert.deepEqual(await turns(h, "stranded-s6"), [["turn-1", "q1", "failed"]]);
  assert.deepEqual(errors.get("stranded-s6"), ["onClose", "onTaskInterrupted"]);
  assert.equal(await h.call("stranded-s6", "taskRows"), 0);
  await h.call("stranded-s6", "allowAll");
  const back = await h.open("stranded-s6", "cbor");
  const again = await asked(h, back, engine, "q1");
  again.reply({ text: "Back." });
  assert.equal((await finalFrame(back, "q1")).fr, "stop");
});

test("an agent woken from hibernation ends a stranded turn as it starts, and the device still connected is told", async () => {
  const engine = scriptedEngine();
  const h = harness(engine, {}, { idleTimeoutMs: 1000 });
  const dev = await h.open("stranded-s7", "cbor");
  await h.call("stranded-s7", "refuseAllTurnEnds");
  (await asked(h, dev, engine, "q1")).reply({ text: "Lost." });
  await failures("stranded-s7", 2);
  await h.call("stranded-s7", "allowAll");
  // Nothing runs: a stranded turn does not keep the agent in memory.
  const before = h.runtime.stats().active;
  await h.clock.advance(5000);
  assert.ok(h.runtime.stats().active < before, "the agent hibernated");
  assert.deepEqual(dev.frames("error"), []);

  assert.deepEqual(await turns(h, "stranded-s7"), [["turn-1", "q1", "failed"]]);
  assert.deepEqual(
    dev.frames("error").map((e) => [e.code, e.id]),
    [["BRIDGE_ERR_REASON_FAILED", "q1"]],
  );
  // How far the turn's chunks went lived in the memory the agent left; its final frame takes the seq stored ahead of
  // them, so it never repeats one the device has seen (a device that drops repeated seqs would never see it end).
  const fin = await finalFrame(dev, "q1");
  assert.equal(fin.fr, "error");
  const sent = dev
    .frames("reason")
    .filter((f) => f.fin !== true)
    .map((f) => Number(f.seq));
  assert.ok(sent.length > 0 && Number(fin.seq) > Math.max(...sent), `final seq ${fin.seq} after chunks ${sent}`);
  assert.deepEqual(errors.get("stranded-s7"), ["onTaskDone", "onTaskDone"]);
});
