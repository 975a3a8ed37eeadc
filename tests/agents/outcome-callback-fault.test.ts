import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import {
  Agent,
  type CallResult,
  type RuntimeObserver,
  type TaskContext,
  type TaskInfo,
  type Value,
} from "../../agents/index.ts";
import { RuntimeDb } from "../../agents/runtime-db.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { settle, tempDir, testRuntime } from "./helpers.ts";

// An event's outcome goes to a callback: the caller's promise for a device message or an operator call, but the
// runtime's own bookkeeping for an alarm or a queue flush (a failed one sets the agent's alarm again with backoff, a
// write to the runtime database). When that callback throws (the runtime database failing), or a metrics observer
// does after a batch's COMMIT, the batch's other events keep their own outcomes, each event is settled once, and a
// task's report that committed does not run again (agents/cell-batch.ts, commitBatch; agents/cell-mailbox.ts,
// settleEvent).

const seen: string[] = [];
const contexts = new Map<string, TaskContext>();
let releaseHold: () => void = () => {};
/** How many of the next wakes fail (the constructor throws). */
let failingWakes = 0;

class Keeper extends Agent {
  constructor(...args: ConstructorParameters<typeof Agent>) {
    if (failingWakes > 0) {
      failingWakes--;
      throw new Error("cannot wake");
    }
    super(...args);
  }
  override onStart(): void {
    this.sql`CREATE TABLE IF NOT EXISTS notes (n TEXT)`;
    this.sql`CREATE TABLE IF NOT EXISTS progress (p TEXT)`;
  }
  begin(q: string): string {
    return this.startTask("answer", { q }, (task) => {
      contexts.set(q, task);
      task.progress(`${q}-p1`);
      return new Promise<Value>(() => {});
    });
  }
  /** An alarm `seconds` from now whose event fails as a whole: the state it leaves is over the database cap. */
  later(seconds: number): void {
    this.schedule(seconds, "grow");
  }
  grow(): void {
    this.setState({ big: "x".repeat(400 * 1024) });
  }
  async hold(): Promise<void> {
    await new Promise<void>((resolve) => {
      releaseHold = resolve;
    });
  }
  boom(): void {
    this.sql`INSERT INTO notes (n) VALUES ('boom')`;
    throw new Error("boom");
  }
  note(n: string): void {
    this.sql`INSERT INTO notes (n) VALUES (${n})`;
  }
  notes(): Value {
    return this.sql<{ n: string }>`SELECT n FROM notes ORDER BY rowid`.map((r) => r.n);
  }
  progressRows(): Value {
    return this.sql<{ p: string }>`SELECT p FROM progress ORDER BY rowid`.map((r) => r.p);
  }
  override onTaskProgress(_task: TaskInfo, update: Value): void {
    seen.push(String(update));
    this.sql`INSERT INTO progress (p) VALUES (${String(update)})`;
  }
}

/** The runtime database refuses `times` alarm writes ("disk I/O error"), then writes again; `restore` ends it. */
function failAlarmWrites(times: number): { thrown: () => number; restore(): void } {
  const setAlarm = RuntimeDb.prototype.setAlarm;
  let thrown = 0;
  RuntimeDb.prototype.setAlarm = function (this: RuntimeDb, agentId: string, at: number | null): void {
    if (thrown < times) {
      thrown++;
      throw new Error("disk I/O error");
    }
    setAlarm.call(this, agentId, at);
  };
  return {
    thrown: () => thrown,
    restore() {
      RuntimeDb.prototype.setAlarm = setAlarm;
    },
  };
}

/** The promise's outcome once it settled, undefined while it has not (a caller that would wait forever). */
function track(p: Promise<CallResult>): { outcome: CallResult | undefined } {
  const t: { outcome: CallResult | undefined } = { outcome: undefined };
  void p.then((r) => {
    t.outcome = r;
  });
  return t;
}

describe("a callback that throws as a batch ends", () => {
  const t = tempDir();
  after(() => t.remove());

  /**
   * One batch behind a held call: the alarm (which fails as a whole, so its callback sets the alarm again and meets
   * the fault), the task's second progress (which commits) and a note (which commits).
   */
  async function batchBehindFailingAlarm(name: string, seed: number, faults: number) {
    seen.length = 0;
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, name), Keeper, seed, { clock, maxDatabaseBytes: 256 * 1024 });
    await rt.start();
    await rt.call("k", "begin", ["q1"]);
    await settle();
    assert.deepEqual(seen, ["q1-p1"]);
    await rt.call("k", "later", [1]);
    const hold = rt.call("k", "hold", []);
    await settle();
    await clock.advance(1_000);
    contexts.get("q1")?.progress("q1-p2");
    const note = track(rt.call("k", "note", ["n1"]));
    const fault = failAlarmWrites(faults);
    releaseHold();
    assert.deepEqual(await hold, { ok: true, value: null });
    await settle();
    return { rt, note, fault };
  }

  test("an alarm's outcome callback that throws leaves the other events their own outcomes and runs a report once", async () => {
    const { rt, note, fault } = await batchBehindFailingAlarm("once", 1, 1);
    try {
      fault.restore();
      assert.equal(fault.thrown(), 1, "the alarm's backoff met the fault");
      assert.deepEqual(note.outcome, { ok: true, value: null }, "the note committed, and its caller hears so");
      assert.deepEqual(seen, ["q1-p1", "q1-p2"], "the progress that committed ran once");
      assert.deepEqual(await rt.call("k", "notes", []), { ok: true, value: ["n1"] });
      assert.deepEqual(await rt.call("k", "progressRows", []), { ok: true, value: ["q1-p1", "q1-p2"] });
    } finally {
      fault.restore();
      await rt.shutdown();
    }
  });

  test("an outcome callback that keeps throwing neither leaves an event unresolved nor stalls the agent's mailbox", async () => {
    const { rt, note, fault } = await batchBehindFailingAlarm("lasting", 2, Number.POSITIVE_INFINITY);
    try {
      assert.ok(fault.thrown() >= 1, "the alarm's backoff met the fault");
      assert.deepEqual(note.outcome, { ok: true, value: null }, "the note committed, and its caller hears so");
      const notes = track(rt.call("k", "notes", []));
      await settle();
      assert.deepEqual(notes.outcome, { ok: true, value: ["n1"] }, "the next event runs");
      assert.deepEqual(seen, ["q1-p1", "q1-p2"]);
    } finally {
      fault.restore();
      await rt.shutdown();
    }
  });

  test("after a failed wake, an outcome callback that throws keeps no other event of the batch from its failure", async () => {
    seen.length = 0;
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "wake"), Keeper, 3, {
      clock,
      maxDatabaseBytes: 256 * 1024,
      idleTimeoutMs: 1_000,
    });
    await rt.start();
    try {
      await rt.call("k", "later", [5]);
      await clock.advance(2_000);
      assert.equal(rt.stats().active, 0, "the idle agent hibernated");
      failingWakes = 1;
      const lasting = failAlarmWrites(Number.POSITIVE_INFINITY);
      try {
        // The alarm and a call reach the sleeping agent in one tick: one batch, whose wake fails.
        clock.advanceSync(3_000);
        const call = track(rt.call("k", "notes", []));
        await settle();
        assert.ok(lasting.thrown() >= 1, "the alarm's backoff met the fault");
        assert.equal(call.outcome?.ok, false, "the call failed with the wake, and its caller hears so");
      } finally {
        lasting.restore();
      }
      assert.deepEqual(await rt.call("k", "notes", []), { ok: true, value: [] }, "the next event wakes the agent");
    } finally {
      failingWakes = 0;
      await rt.shutdown();
    }
  });
  /** Behind a held call, one batch: the task's second progress (which commits), then `then` (a call). */
  async function batchBehindHold(name: string, seed: number, observer: RuntimeObserver, then: string) {
    seen.length = 0;
    const rt = testRuntime(path.join(t.dir, name), Keeper, seed, { observer });
    await rt.start();
    await rt.call("k", "begin", ["q1"]);
    await settle();
    const hold = rt.call("k", "hold", []);
    await settle();
    contexts.get("q1")?.progress("q1-p2");
    const call = track(rt.call("k", then, ["n1"]));
    return { rt, hold, call };
  }

  test("an observer whose onCommit throws leaves the committed events committed and runs a report once", async () => {
    let armed = false;
    const { rt, hold, call } = await batchBehindHold(
      "on-commit",
      4,
      {
        onCommit: () => {
          if (armed) throw new Error("metrics broke");
        },
      },
      "note",
    );
    try {
      armed = true;
      releaseHold();
      await hold;
      await settle();
      armed = false;
      assert.deepEqual(call.outcome, { ok: true, value: null }, "the note committed, and its caller hears so");
      assert.deepEqual(seen, ["q1-p1", "q1-p2"], "the progress that committed ran once");
      assert.deepEqual(await rt.call("k", "notes", []), { ok: true, value: ["n1"] });
    } finally {
      armed = false;
      await rt.shutdown();
    }
  });

  test("an observer whose onError throws after a commit neither runs a report again nor stalls the agent", async () => {
    const { rt, hold, call } = await batchBehindHold(
      "on-error",
      5,
      {
        onError: () => {
          throw new Error("metrics broke");
        },
      },
      "boom",
    );
    try {
      releaseHold();
      await hold;
      await settle();
      assert.equal(call.outcome?.ok, false, "the failing call failed");
      assert.deepEqual(seen, ["q1-p1", "q1-p2"], "the progress that committed ran once");
      const notes = track(rt.call("k", "notes", []));
      await settle();
      assert.deepEqual(notes.outcome, { ok: true, value: [] }, "the next event runs; the failed call left no row");
      assert.deepEqual(await rt.call("k", "progressRows", []), { ok: true, value: ["q1-p1", "q1-p2"] });
    } finally {
      await rt.shutdown();
    }
  });
});
