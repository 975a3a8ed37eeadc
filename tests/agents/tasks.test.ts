import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type AgentRuntime, type TaskInfo, type Value } from "../../agents/index.ts";
import { RuntimeDb } from "../../agents/runtime-db.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { failControlOnce } from "./control-fault.ts";
import { RecordingTransport, settle, tempDir, testRuntime } from "./helpers.ts";

const seen: string[] = [];
/** Lets a test finish a running task from outside. */
const finishers = new Map<string, (v: Value) => void>();

class Streamer extends Agent {
  begin(question: string): string {
    return this.startTask("answer", { q: question }, async (task) => {
      task.progress("chunk-1");
      task.progress("chunk-2");
      return new Promise<Value>((resolve, reject) => {
        finishers.set(question, resolve);
        task.signal.addEventListener("abort", () => reject(new Error("aborted")));
      });
    });
  }
  beginThenThrow(question: string): void {
    this.begin(question);
    throw new Error("event fails");
  }
  /** Starts a task, cancels it in the same event, then fails the event. */
  beginCancelThenThrow(question: string): void {
    this.cancelTask(this.begin(question));
    throw new Error("event fails");
  }
  cancel(id: string): boolean {
    return this.cancelTask(id);
  }
  running(): Value {
    return this.getTasks().map((t) => t.kind);
  }
  override onTaskProgress(task: TaskInfo, update: Value): void {
    seen.push(`progress:${(task.input as { q: string }).q}:${update}`);
    for (const c of this.getConnections())
      c.send({ channel: "reason", frame: { id: task.id, seq: 0, text: String(update) } });
  }
  override onTaskDone(task: TaskInfo, result: Value): void {
    seen.push(`done:${(task.input as { q: string }).q}:${result}`);
    this.sql`CREATE TABLE IF NOT EXISTS answers (a TEXT)`;
    this.sql`INSERT INTO answers (a) VALUES (${String(result)})`;
  }
  override onTaskFailed(task: TaskInfo, error: { code: string }): void {
    seen.push(`failed:${(task.input as { q: string }).q}:${error.code}`);
  }
  override onTaskInterrupted(task: TaskInfo): void {
    seen.push(`interrupted:${(task.input as { q: string }).q}`);
  }
  answers(): Value {
    return this.sql<{ a: string }>`SELECT a FROM answers`.map((r) => r.a);
  }
}

/** Opens the gate a `hold` event waits on. */
let releaseHold: () => void = () => {};

/** A Streamer with an event that holds the mailbox, and one that writes, so events can queue up behind it. */
class HoldingStreamer extends Streamer {
  async hold(): Promise<void> {
    await new Promise<void>((resolve) => {
      releaseHold = resolve;
    });
  }
  note(): void {
    this.sql`CREATE TABLE IF NOT EXISTS notes (n TEXT)`;
    this.sql`INSERT INTO notes (n) VALUES ('note')`;
  }
}

/** What the bodies of BatchedStreamer's tasks saw as they started: whether their signal was already aborted. */
const bodies: string[] = [];

/** A HoldingStreamer with a task whose body notes its start, and an event that never settles (it times out). */
class BatchedStreamer extends HoldingStreamer {
  beginNoted(question: string): string {
    return this.startTask("noted", { q: question }, async (task) => {
      bodies.push(`${question}:${task.signal.aborted ? "aborted" : "live"}`);
      return null;
    });
  }
  hang(): Promise<void> {
    return new Promise(() => {});
  }
  /** An eager task that waits for its signal, noting its abort. */
  beginEagerWaiting(question: string): string {
    return this.startTask(
      "waiting",
      { q: question },
      async (task) => {
        bodies.push(`${question}:started`);
        await new Promise<void>((resolve) =>
          task.signal.addEventListener("abort", () => {
            bodies.push(`${question}:aborted`);
            resolve();
          }),
        );
        return null;
      },
      { eager: true },
    );
  }
}

/** How many wakes of WakeFailingStreamer still fail (its constructor throws, as for a database that cannot open). */
let failingWakes = 0;
class WakeFailingStreamer extends HoldingStreamer {
  constructor(...args: ConstructorParameters<typeof HoldingStreamer>) {
    if (failingWakes > 0) {
      failingWakes--;
      throw new Error("cannot wake");
    }
    super(...args);
  }
}

/** Counts starts: an agent woken by the runtime's start runs onStart. */
let starts = 0;
class CountedStreamer extends Streamer {
  override onStart(): void {
    starts++;
  }
}

describe("agent background tasks", () => {
  const t = tempDir();
  after(() => t.remove());

  test("a task runs outside the mailbox and its progress and result come back as events", async () => {
    seen.length = 0;
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "run"), Streamer, 1, { clock, idleTimeoutMs: 1000 });
    try {
      const tr = new RecordingTransport();
      await rt.open("s", { id: "c", kind: "mqtt", codec: "cbor", transport: tr });
      const started = await rt.call("s", "begin", ["q1"]);
      assert.ok(started.ok);
      await settle();
      // The mailbox is free while the task runs.
      assert.deepEqual(await rt.call("s", "running", []), { ok: true, value: ["answer"] });
      assert.deepEqual(seen, ["progress:q1:chunk-1", "progress:q1:chunk-2"]);
      assert.deepEqual(
        tr.sent.map((s) => s.message.channel),
        ["reason", "reason"],
      );
      await clock.advance(10_000);
      assert.equal(rt.stats().active, 1, "an agent with a running task is not evicted");
      finishers.get("q1")!("the answer");
      await settle();
      assert.deepEqual(seen.at(-1), "done:q1:the answer");
      assert.deepEqual(await rt.call("s", "answers", []), { ok: true, value: ["the answer"] });
      assert.deepEqual(await rt.call("s", "running", []), { ok: true, value: [] });
      await clock.advance(10_000);
      assert.equal(rt.stats().active, 0, "evicted once the task finished");
    } finally {
      await rt.shutdown();
    }
  });

  test("cancelTask aborts the signal and onTaskFailed gets BRIDGE_ERR_TASK_CANCELLED; a rolled-back event starts nothing", async () => {
    seen.length = 0;
    const rt = testRuntime(path.join(t.dir, "cancel"), Streamer, 2);
    try {
      const started = (await rt.call("s", "begin", ["q2"])) as { ok: true; value: string };
      await settle();
      assert.deepEqual(await rt.call("s", "cancel", [started.value]), { ok: true, value: true });
      await settle();
      assert.deepEqual(seen, ["progress:q2:chunk-1", "progress:q2:chunk-2", "failed:q2:BRIDGE_ERR_TASK_CANCELLED"]);
      assert.deepEqual(await rt.call("s", "cancel", [started.value]), { ok: true, value: false });
      seen.length = 0;
      const r = await rt.call("s", "beginThenThrow", ["q3"]);
      assert.equal(r.ok, false);
      await settle();
      assert.deepEqual(seen, []);
      assert.equal(finishers.has("q3"), false);
    } finally {
      await rt.shutdown();
    }
  });

  test("a task cancelled in the event that started it reports nothing when that event rolls back", async () => {
    seen.length = 0;
    const rt = testRuntime(path.join(t.dir, "cancel-rollback"), Streamer, 10);
    try {
      const r = await rt.call("s", "beginCancelThenThrow", ["q10"]);
      assert.equal(r.ok, false);
      await settle();
      assert.deepEqual(seen, [], "no onTaskFailed for a task whose row was rolled back");
      assert.deepEqual(await rt.call("s", "running", []), { ok: true, value: [] });
    } finally {
      await rt.shutdown();
    }
  });

  test("destroying an agent with a running task aborts the task and leaves no agent behind", async () => {
    seen.length = 0;
    const dataDir = path.join(t.dir, "destroy");
    const rt = testRuntime(dataDir, Streamer, 11);
    try {
      await rt.call("s", "begin", ["q11"]);
      await settle();
      await rt.destroyAgent("s");
      await settle();
      assert.ok(!seen.includes("failed:q11:BRIDGE_ERR_TASK_CANCELLED"), "the aborted task reports to nobody");
      assert.deepEqual(fs.readdirSync(path.join(dataDir, "agents")), [], "no database was made again for the task");
      assert.equal(rt.stats().active, 0);
    } finally {
      await rt.shutdown();
    }
  });

  /** A runtime of CountedStreamer agents on `dir` (a folder of this suite's temp dir). */
  const countedRuntime = (dir: string, seed: number, maxActiveAgents?: number) =>
    testRuntime(path.join(t.dir, dir), CountedStreamer, seed, { maxActiveAgents });

  /** Finishes task `q` and waits for its outcome and for the turn after it (when the pending mark is checked). */
  async function finishTask(q: string): Promise<void> {
    finishers.get(q)?.("answer");
    await settle();
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(seen.includes(`done:${q}:answer`));
  }

  /** Shuts `rt` down and asserts that a fresh runtime on the same folder wakes no agent as it starts. */
  async function assertRestartWakesNobody(rt: AgentRuntime, dir: string, seed: number): Promise<void> {
    await rt.shutdown();
    starts = 0;
    const next = countedRuntime(dir, seed);
    try {
      await next.start();
      assert.equal(starts, 0, "no agent had work left, so none was woken");
    } finally {
      await next.shutdown();
    }
  }

  test("a finished task lets its agent's pending mark go, so the next start wakes nothing", async () => {
    seen.length = 0;
    const rt = countedRuntime("pending-mark", 6);
    await rt.start();
    await rt.call("s", "begin", ["q6"]);
    await settle();
    await finishTask("q6");
    await assertRestartWakesNobody(rt, "pending-mark", 7);
  });

  test("an agent keeps its pending mark while in memory and lets it go when it hibernates", async () => {
    seen.length = 0;
    const writes: boolean[] = [];
    const original = RuntimeDb.prototype.setPending;
    RuntimeDb.prototype.setPending = function (this: RuntimeDb, agentId: string, on: boolean) {
      writes.push(on);
      original.call(this, agentId, on);
    };
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "pending-resident"), CountedStreamer, 10, { clock, idleTimeoutMs: 1000 });
    try {
      await rt.start();
      for (const q of ["q10", "q11", "q12"]) {
        await rt.call("s", "begin", [q]);
        await settle();
        await finishTask(q);
      }
      // One write for three tasks: the mark is set by the first and kept while the agent stays in memory.
      assert.deepEqual(writes, [true]);
      await clock.advance(10_000);
      await settle();
      assert.equal(rt.stats().active, 0, "the idle agent hibernated");
      assert.deepEqual(writes, [true, false], "hibernation let the mark go");
    } finally {
      RuntimeDb.prototype.setPending = original;
    }
    await assertRestartWakesNobody(rt, "pending-resident", 11);
  });

  test("an agent evicted as its task's outcome commits still lets its pending mark go", async () => {
    seen.length = 0;
    const rt = countedRuntime("pending-mark-evicted", 8, 1);
    await rt.start();
    // Two agents over a cap of one, both busy with a task: neither can leave memory yet.
    await rt.call("e1", "begin", ["q8"]);
    await rt.call("e2", "begin", ["q9"]);
    await settle();
    // e1's outcome commits, its drain stops and the cap evicts it in that same turn (it is the only idle agent).
    await finishTask("q8");
    await finishTask("q9");
    await assertRestartWakesNobody(rt, "pending-mark-evicted", 9);
  });

  test("a task's outcome in a batch abandoned to a storage fault still finishes it after the wake, not as interrupted", async () => {
    seen.length = 0;
    const rt = testRuntime(path.join(t.dir, "abandoned-outcome"), HoldingStreamer, 12);
    try {
      await rt.call("s", "begin", ["q12"]);
      await settle();
      // The outcome queues up behind a writing event, in one batch: the savepoint before the outcome fails.
      const hold = rt.call("s", "hold", []);
      await settle();
      const note = rt.call("s", "note", []);
      finishers.get("q12")?.("the answer");
      await settle();
      const fault = failControlOnce((text) => text === "SAVEPOINT ev");
      try {
        releaseHold();
        assert.deepEqual(await hold, { ok: true, value: null });
        assert.equal((await note).ok, false, "the batch was abandoned");
      } finally {
        fault.restore();
      }
      await settle();
      assert.deepEqual(await rt.call("s", "answers", []), { ok: true, value: ["the answer"] });
      assert.deepEqual(seen.slice(2), ["done:q12:the answer"], "finished by its outcome, never interrupted");
    } finally {
      await rt.shutdown();
    }
  });

  /**
   * Starts task `q` on agent "s", then lets its outcome arrive in a batch a storage fault abandons (behind a held
   * event and a note), with the next `failing` wakes of the agent failing. Returns the held event's and the note's
   * results.
   */
  async function finishInAbandonedBatch(rt: AgentRuntime, q: string, failing: number) {
    await rt.call("s", "begin", [q]);
    await settle();
    const hold = rt.call("s", "hold", []);
    await settle();
    const note = rt.call("s", "note", []);
    finishers.get(q)?.("the answer");
    await settle();
    const fault = failControlOnce((text) => text === "SAVEPOINT ev");
    failingWakes = failing;
    try {
      releaseHold();
      return { hold: await hold, note: await note };
    } finally {
      fault.restore();
    }
  }

  test("a task's outcome whose wake fails runs a backoff later, and an event in between does not interrupt it", async () => {
    seen.length = 0;
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "wake-fails"), WakeFailingStreamer, 13, { clock });
    try {
      // The batch is abandoned, its outcome handed back once, and the wake that follows fails, twice over.
      const { hold, note } = await finishInAbandonedBatch(rt, "q13", 2);
      assert.deepEqual(hold, { ok: true, value: null });
      assert.equal(note.ok, false, "the batch was abandoned");
      await settle();
      assert.equal((await rt.call("s", "answers", [])).ok, false, "the second wake failed too");
      assert.deepEqual(seen.slice(2), [], "the outcome waits; it is not run again at once");
      // A wake in between: its start leaves the task's row to the outcome still held.
      assert.equal((await rt.call("s", "running", [])).ok, true);
      assert.deepEqual(seen.slice(2), [], "not reported as interrupted");
      await clock.advance(1_000);
      assert.deepEqual(seen.slice(2), ["done:q13:the answer"], "finished by its outcome a second later");
      assert.deepEqual(await rt.call("s", "answers", []), { ok: true, value: ["the answer"] });
    } finally {
      failingWakes = 0;
      await rt.shutdown();
    }
  });

  test("a task's outcome held for a later try is dropped when its agent is destroyed, and does not make it again", async () => {
    seen.length = 0;
    const clock = new ManualClock();
    const dataDir = path.join(t.dir, "wake-fails-destroy");
    const rt = testRuntime(dataDir, WakeFailingStreamer, 14, { clock });
    try {
      // As above: the batch is abandoned, and the wake that follows fails, so the outcome is held for a later try.
      await finishInAbandonedBatch(rt, "q14", 1);
      await settle();
      assert.equal(failingWakes, 0, "the wake failed: the outcome is held");
      assert.equal(await rt.destroyAgent("s"), true);
      const file = path.join(dataDir, "agents", "s.db");
      assert.equal(fs.existsSync(file), false, "destroyed");
      await clock.advance(1_000);
      await settle();
      assert.deepEqual(seen.slice(2), [], "the held outcome never ran");
      assert.equal(fs.existsSync(file), false, "the held outcome did not make the destroyed agent again");
      assert.equal(rt.stats().active, 0);
    } finally {
      failingWakes = 0;
      await rt.shutdown();
    }
  });

  test("a task whose starting event's batch ends in a timeout that retires the agent is never run", async () => {
    seen.length = 0;
    bodies.length = 0;
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "retired-before-launch"), BatchedStreamer, 15, {
      clock,
      callbackTimeoutMs: 1_000,
    });
    try {
      // The task's event and one that hangs queue up behind a held event, so they run as one batch.
      const hold = rt.call("s", "hold", []);
      await settle();
      const begin = rt.call("s", "beginNoted", ["q15"]);
      const hang = rt.call("s", "hang", []);
      await settle();
      releaseHold();
      assert.deepEqual(await hold, { ok: true, value: null });
      await clock.advance(1_000);
      assert.equal((await begin).ok, true, "the event that started the task committed");
      assert.equal((await hang).ok, false, "the hung call timed out");
      await settle();
      assert.deepEqual(bodies, [], "the task was cut off with its instance before it started: its body never ran");
      assert.deepEqual(seen, ["interrupted:q15"], "the fresh instance hears of it as interrupted");
    } finally {
      await rt.shutdown();
    }
  });

  test("a task started by an event the shutdown drains is not left running after the shutdown", async () => {
    seen.length = 0;
    bodies.length = 0;
    const dataDir = path.join(t.dir, "started-in-shutdown");
    let rt = testRuntime(dataDir, BatchedStreamer, 16);
    await rt.start();
    const hold = rt.call("s", "hold", []);
    await settle();
    // Accepted before the shutdown, so its drain runs them.
    const begin = rt.call("s", "beginNoted", ["q16"]);
    const eager = rt.call("s", "beginEagerWaiting", ["q17"]);
    const down = rt.shutdown();
    releaseHold();
    await down;
    assert.equal((await hold).ok, true);
    assert.equal((await begin).ok, true);
    assert.equal((await eager).ok, true);
    await settle();
    assert.deepEqual(bodies, [], "neither task started: nothing would have aborted them, nor heard of them");
    rt = testRuntime(dataDir, BatchedStreamer, 17);
    try {
      await rt.start();
      assert.deepEqual(seen.sort(), ["interrupted:q16", "interrupted:q17"], "both rows reach the next start");
    } finally {
      await rt.shutdown();
    }
  });

  test("a task unfinished at shutdown reaches onTaskInterrupted after the restart", async () => {
    seen.length = 0;
    const dataDir = path.join(t.dir, "restart");
    let rt = testRuntime(dataDir, Streamer, 3);
    await rt.start();
    await rt.call("s", "begin", ["q4"]);
    await settle();
    await rt.shutdown();
    finishers.get("q4")?.("too late");
    assert.ok(!seen.some((s) => s.startsWith("done:q4")));
    seen.length = 0;
    rt = testRuntime(dataDir, Streamer, 4);
    try {
      await rt.start();
      assert.deepEqual(seen, ["interrupted:q4"]);
      await rt.shutdown();
      rt = testRuntime(dataDir, Streamer, 5);
      await rt.start();
      assert.deepEqual(seen, ["interrupted:q4"], "reported once");
    } finally {
      await rt.shutdown();
    }
  });
});
