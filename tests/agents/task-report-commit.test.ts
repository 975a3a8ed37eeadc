import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type AgentRuntime, type TaskContext, type TaskInfo, type Value } from "../../agents/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { failControlOnce } from "./control-fault.ts";
import { settle, tempDir, testRuntime } from "./helpers.ts";

// A task's report exists only in its agent's mailbox: nothing sends it again. When the batch it ran in fails as a
// whole after it ran (its COMMIT fails, or SQLite rolls the batch's transaction back for a later event of it), its
// writes are gone with the batch, so it must run again, not fail: failed, its task would be reported as interrupted at
// the next wake, the outcome lost (agents/cell-batch.ts, agents/cell-mailbox.ts handBackReports).

const seen: string[] = [];
const finishers = new Map<string, (v: Value) => void>();
const contexts = new Map<string, TaskContext>();
let releaseHold: () => void = () => {};

class Answerer extends Agent {
  override onStart(): void {
    this.sql`CREATE TABLE IF NOT EXISTS answers (a TEXT)`;
    this.sql`CREATE TABLE IF NOT EXISTS u (k INTEGER PRIMARY KEY)`;
    this.sql`INSERT OR IGNORE INTO u (k) VALUES (1)`;
    this.sql`CREATE TABLE IF NOT EXISTS progress (p TEXT)`;
  }
  begin(q: string): string {
    return this.startTask("answer", { q }, (task) => {
      contexts.set(q, task);
      task.progress(`${q}-p1`);
      return new Promise<Value>((resolve) => finishers.set(q, resolve));
    });
  }
  async hold(): Promise<void> {
    await new Promise<void>((resolve) => {
      releaseHold = resolve;
    });
  }
  /** Fails with a constraint that makes SQLite roll the whole transaction back on its own (a lost transaction). */
  lose(): void {
    this.sql`INSERT OR ROLLBACK INTO u (k) VALUES (1)`;
  }
  answers(): Value {
    return this.sql<{ a: string }>`SELECT a FROM answers ORDER BY rowid`.map((r) => r.a);
  }
  override onTaskProgress(task: TaskInfo, update: Value): void {
    seen.push(`progress:${(task.input as { q: string }).q}:${String(update)}`);
    this.sql`INSERT INTO progress (p) VALUES (${String(update)})`;
  }
  override onTaskDone(task: TaskInfo, result: Value): void {
    seen.push(`done:${(task.input as { q: string }).q}`);
    this.sql`INSERT INTO answers (a) VALUES (${String(result)})`;
  }
  override onTaskInterrupted(task: TaskInfo): void {
    seen.push(`interrupted:${(task.input as { q: string }).q}`);
  }
}

describe("a task's report in a batch that fails as a whole after it ran", () => {
  const t = tempDir();
  after(() => t.remove());

  /** Restarts on the same directory: a task whose outcome was lost would be reported as interrupted now. */
  async function restart(rt: AgentRuntime, dataDir: string, seed: number): Promise<void> {
    await rt.shutdown();
    const again = testRuntime(dataDir, Answerer, seed);
    try {
      await again.start();
      assert.equal((await again.call("a", "answers", [])).ok, true);
    } finally {
      await again.shutdown();
    }
  }

  test("a task's outcome whose batch's COMMIT fails runs again, so the task is done with, not interrupted", async () => {
    seen.length = 0;
    const dataDir = path.join(t.dir, "commit");
    const rt = testRuntime(dataDir, Answerer, 1);
    try {
      await rt.call("a", "begin", ["q1"]);
      await settle();
      assert.deepEqual(seen, ["progress:q1:q1-p1"]);
      const fault = failControlOnce((text) => text === "COMMIT");
      try {
        finishers.get("q1")?.("the answer");
        await settle();
      } finally {
        fault.restore();
      }
      assert.deepEqual(await rt.call("a", "answers", []), { ok: true, value: ["the answer"] }, "its writes committed");
      // The first run's writes were rolled back with the COMMIT: the hook runs again (at least once, as a retry).
      assert.deepEqual(seen, ["progress:q1:q1-p1", "done:q1", "done:q1"]);
      await restart(rt, dataDir, 2);
      assert.deepEqual(seen, ["progress:q1:q1-p1", "done:q1", "done:q1"], "never reported as interrupted");
    } finally {
      await rt.shutdown();
    }
  });

  test("a task's outcome whose batch's transaction SQLite lost for a later event runs again", async () => {
    seen.length = 0;
    const dataDir = path.join(t.dir, "lost");
    const rt = testRuntime(dataDir, Answerer, 3);
    try {
      await rt.call("a", "begin", ["q2"]);
      await settle();
      // The outcome queues up behind a held event, then an event that loses the transaction joins its batch.
      const hold = rt.call("a", "hold", []);
      await settle();
      finishers.get("q2")?.("the answer");
      await settle();
      const lose = rt.call("a", "lose", []);
      releaseHold();
      assert.deepEqual(await hold, { ok: true, value: null });
      assert.equal((await lose).ok, false, "the losing event fails");
      await settle();
      assert.deepEqual(await rt.call("a", "answers", []), { ok: true, value: ["the answer"] });
      await restart(rt, dataDir, 4);
      assert.deepEqual(seen, ["progress:q2:q2-p1", "done:q2", "done:q2"], "never reported as interrupted");
    } finally {
      await rt.shutdown();
    }
  });

  test("after a lost transaction a task's progress runs again before its outcome that was behind it in the batch", async () => {
    seen.length = 0;
    const dataDir = path.join(t.dir, "lost-order");
    const rt = testRuntime(dataDir, Answerer, 7);
    try {
      await rt.call("a", "begin", ["q4"]);
      await settle();
      const hold = rt.call("a", "hold", []);
      await settle();
      // One batch: the task's progress (which writes), an event that loses the transaction, the task's outcome.
      contexts.get("q4")?.progress("q4-p2");
      const lose = rt.call("a", "lose", []);
      finishers.get("q4")?.("the answer");
      await settle();
      releaseHold();
      await hold;
      assert.equal((await lose).ok, false);
      await settle();
      assert.deepEqual(seen, ["progress:q4:q4-p1", "progress:q4:q4-p2", "progress:q4:q4-p2", "done:q4"]);
      assert.deepEqual(await rt.call("a", "answers", []), { ok: true, value: ["the answer"] });
    } finally {
      await rt.shutdown();
    }
  });

  test("a report whose batch's COMMIT fails again after its hand-back is tried later with backoff, not in a loop", async () => {
    seen.length = 0;
    const clock = new ManualClock();
    const dataDir = path.join(t.dir, "commit-twice");
    const rt = testRuntime(dataDir, Answerer, 5, { clock });
    try {
      await rt.call("a", "begin", ["q3"]);
      await settle();
      // Two COMMITs fail: the outcome's first run, and the run it was handed back for.
      const first = failControlOnce((text) => text === "COMMIT");
      const second = failControlOnce((text) => text === "COMMIT");
      try {
        finishers.get("q3")?.("the answer");
        await settle();
      } finally {
        second.restore();
        first.restore();
      }
      assert.deepEqual(seen, ["progress:q3:q3-p1", "done:q3", "done:q3"], "run twice, then held");
      assert.deepEqual(await rt.call("a", "answers", []), { ok: true, value: [] });
      await clock.advance(1_000);
      assert.deepEqual(seen, ["progress:q3:q3-p1", "done:q3", "done:q3", "done:q3"], "a second later, once more");
      assert.deepEqual(await rt.call("a", "answers", []), { ok: true, value: ["the answer"] });
      await restart(rt, dataDir, 6);
      assert.equal(seen.includes("interrupted:q3"), false, "never reported as interrupted");
    } finally {
      await rt.shutdown();
    }
  });
});
