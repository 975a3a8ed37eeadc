/**
 * An eager task's row (`startTask(..., { eager: true })`) is written after its `run` started: by the runtime, when
 * the scope that started it ends (the event, a `transaction()`, a write outside events), still inside that scope's
 * transaction. So the row exists before the event commits, a failure to write it rolls the event back and aborts the
 * task, and restart recovery sees it, as when the row was written before the launch; a non-eager task's row is still
 * written by `startTask` itself.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type AgentRuntime, type TaskInfo, type Value } from "../../agents/index.ts";
import { BridgeError } from "../../errors/index.ts";
import { crashSnapshot } from "./runtime-db-fault.ts";
import { settle, tempDir, testRuntime } from "./helpers.ts";

const seen: string[] = [];
/** How many rows of its own each eager task's body saw as it started, by question. */
const rowsAtRun = new Map<string, number>();
/** The id each task's body was given, by question. */
const idsAtRun = new Map<string, string>();
/** The abort reason each task's signal received, by question. */
const aborted = new Map<string, unknown>();
/** Opens the gate a `startThenHold` event waits on after starting its task. */
let releaseHold: () => void = () => {};

type Body = (signal: AbortSignal, q: string) => Promise<Value>;

/** Runs until its signal aborts. */
const waitForAbort: Body = (signal) =>
  new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
/** Finishes at once. */
const answerAtOnce: Body = (_signal, q) => Promise.resolve(`answer:${q}`);

class RowAgent extends Agent {
  /** The task rows through the agent's own connection (an event's uncommitted writes included). */
  taskRows(): Value {
    return this.sql<{ id: string; kind: string }>`SELECT id, kind FROM _bridge_tasks ORDER BY started_at, id`.map(
      (r) => `${r.kind}:${r.id}`,
    );
  }

  notes(): Value {
    this.#notesTable();
    return this.sql<{ n: string }>`SELECT n FROM notes ORDER BY rowid`.map((r) => r.n);
  }

  refuseTaskRows(): void {
    this.sql`CREATE TRIGGER refuse_task_rows BEFORE INSERT ON _bridge_tasks
      BEGIN SELECT RAISE(ABORT, 'task rows refused by the test'); END`;
  }

  allowTaskRows(): void {
    this.sql`DROP TRIGGER refuse_task_rows`;
  }

  /** Starts an eager task, then awaits the loop's next check phase: what it saw of the task's row at each step. */
  async startThenAwait(q: string): Promise<Value> {
    const id = this.#eager(q, waitForAbort);
    const afterStart = this.#rowsOf(id);
    await new Promise((resolve) => setImmediate(resolve));
    return { id, atRun: rowsAtRun.get(q) ?? -1, afterStart, afterAwait: this.#rowsOf(id) };
  }

  /** Starts an eager task, then waits for the test to open the gate. */
  async startThenHold(q: string): Promise<void> {
    this.#eager(q, waitForAbort);
    await new Promise<void>((resolve) => {
      releaseHold = resolve;
    });
  }

  /** Starts a task the default way: its row is written at once. */
  startLazy(q: string): Value {
    const id = this.startTask("lazy", { q }, (task) => waitForAbort(task.signal, q));
    return { id, afterStart: this.#rowsOf(id) };
  }

  /** Writes a note, then starts an eager task that reports progress and finishes at once. */
  noteThenStart(q: string): void {
    this.#note(q);
    this.#eager(q, answerAtOnce);
  }

  /** Writes a note, then starts an eager task whose input cannot be stored (a function in it). */
  noteThenStartUnstorable(q: string): void {
    this.#note(q);
    this.#eager(q, answerAtOnce, { q, f: (() => q) as unknown as Value });
  }

  /** Starts a task that is not eager with an input that cannot be stored: what startTask threw, if anything. */
  startLazyUnstorable(q: string): Value {
    try {
      this.startTask("lazy", { q, f: (() => q) as unknown as Value }, () => Promise.resolve(null));
      return "started";
    } catch (err) {
      return err instanceof BridgeError ? err.code : String(err);
    }
  }

  /** Starts an eager task inside transaction(); `fail` throws from it after the start. What transaction() did. */
  startInTransaction(q: string, fail: boolean): Value {
    try {
      this.transaction(() => {
        this.#note(q);
        this.#eager(q, answerAtOnce);
        if (fail) throw new Error("the transaction fails after starting the task");
      });
      return "committed";
    } catch (err) {
      return err instanceof BridgeError ? err.code : (err as Error).message;
    }
  }

  /** Starts an eager task and cancels it in the same event, before its row is written. */
  startThenCancel(q: string): boolean {
    return this.cancelTask(this.#eager(q, waitForAbort));
  }

  /** Starts an eager task from a timer, outside any event. */
  startFromTimer(q: string): void {
    setImmediate(() => this.#eager(q, waitForAbort));
  }

  override onTaskProgress(task: TaskInfo, update: Value): void {
    seen.push(`progress ${(task.input as { q: string }).q}: ${update}`);
  }
  override onTaskDone(task: TaskInfo, result: Value): void {
    seen.push(`done ${(task.input as { q: string }).q}: ${result}`);
  }
  override onTaskFailed(task: TaskInfo, error: { code: string }): void {
    seen.push(`failed ${(task.input as { q: string }).q}: ${error.code}`);
  }
  override onTaskInterrupted(task: TaskInfo): void {
    seen.push(`interrupted ${(task.input as { q: string }).q}`);
  }

  #eager(q: string, body: Body, input: Value = { q }): string {
    return this.startTask(
      "eager",
      input,
      (task) => {
        rowsAtRun.set(q, this.#rowsOf(task.id));
        idsAtRun.set(q, task.id);
        task.signal.addEventListener("abort", () => aborted.set(q, task.signal.reason));
        task.progress(`progress:${q}`);
        return body(task.signal, q);
      },
      { eager: true },
    );
  }

  #rowsOf(id: string): number {
    return Number(this.sql<{ n: number }>`SELECT COUNT(*) AS n FROM _bridge_tasks WHERE id = ${id}`[0].n);
  }

  #notesTable(): void {
    this.sql`CREATE TABLE IF NOT EXISTS notes (n TEXT)`;
  }

  #note(q: string): void {
    this.#notesTable();
    this.sql`INSERT INTO notes (n) VALUES (${q})`;
  }
}

describe("an eager task's row", () => {
  const t = tempDir();
  after(() => t.remove());

  function reset(): void {
    seen.length = 0;
    rowsAtRun.clear();
    idsAtRun.clear();
    aborted.clear();
  }

  /** Runs `fn` on a fresh runtime in folder `dir` of the suite, reports cleared; then shuts it down. */
  async function withRuntime(dir: string, seed: number, fn: (rt: AgentRuntime) => Promise<void>): Promise<void> {
    reset();
    const rt = testRuntime(path.join(t.dir, dir), RowAgent, seed);
    try {
      await fn(rt);
    } finally {
      await rt.shutdown();
    }
  }

  function assertCancelled(q: string): void {
    const reason = aborted.get(q);
    assert.ok(reason instanceof BridgeError, `the signal of ${q}'s task was aborted`);
    assert.equal(reason.code, "BRIDGE_ERR_TASK_CANCELLED");
  }

  test("is written after the task started and after the event's awaits, and is committed with the event", async () => {
    await withRuntime("after-start", 1, async (rt) => {
      const r = await rt.call("a", "startThenAwait", ["q1"]);
      assert.equal(r.ok, true);
      const { id, atRun, afterStart, afterAwait } = r.ok ? (r.value as Record<string, Value>) : {};
      assert.deepEqual({ atRun, afterStart, afterAwait }, { atRun: 0, afterStart: 0, afterAwait: 0 });
      assert.equal(idsAtRun.get("q1"), id, "the body got the id startTask returned");
      assert.deepEqual(await rt.call("a", "taskRows", []), { ok: true, value: [`eager:${id}`] });
      await settle();
      assert.deepEqual(seen, ["progress q1: progress:q1"], "its reports reach the agent after the commit");
    });
  });

  test("of a task that is not eager is still written by startTask, before the task runs", async () => {
    await withRuntime("lazy", 2, async (rt) => {
      const r = await rt.call("a", "startLazy", ["q2"]);
      assert.equal(r.ok, true);
      const { id, afterStart } = r.ok ? (r.value as Record<string, Value>) : {};
      assert.equal(afterStart, 1);
      assert.deepEqual(await rt.call("a", "taskRows", []), { ok: true, value: [`lazy:${id}`] });
    });
  });

  test("does not change the task ids the runtime's random source gives", async () => {
    let eagerId: Value = null;
    await withRuntime("ids-eager", 3, async (rt) => {
      const r = await rt.call("a", "startThenAwait", ["q3"]);
      eagerId = r.ok ? (r.value as Record<string, Value>).id : null;
    });
    await withRuntime("ids-lazy", 3, async (rt) => {
      const r = await rt.call("a", "startLazy", ["q3"]);
      assert.equal(r.ok ? (r.value as Record<string, Value>).id : null, eagerId);
    });
  });

  test("that cannot be written rolls its event back, aborts the task and drops what it reported", async () => {
    await withRuntime("refused", 4, async (rt) => {
      await rt.call("a", "refuseTaskRows", []);
      const r = await rt.call("a", "noteThenStart", ["q4"]);
      assert.deepEqual(r, {
        ok: false,
        code: "BRIDGE_ERR_STORAGE",
        message: "INSERT INTO: task rows refused by the test",
      });
      await settle();
      assertCancelled("q4");
      assert.deepEqual(seen, [], "neither its progress nor its result reached the agent");
      assert.deepEqual(await rt.call("a", "notes", []), { ok: true, value: [] }, "the event's own write rolled back");
      assert.deepEqual(await rt.call("a", "taskRows", []), { ok: true, value: [] });

      await rt.call("a", "allowTaskRows", []);
      assert.deepEqual(await rt.call("a", "noteThenStart", ["q5"]), { ok: true, value: null });
      await settle();
      assert.deepEqual(seen, ["progress q5: progress:q5", "done q5: answer:q5"]);
      assert.deepEqual(await rt.call("a", "notes", []), { ok: true, value: ["q5"] });
      assert.deepEqual(await rt.call("a", "taskRows", []), { ok: true, value: [] }, "its outcome removed it");
    });
  });

  test("stores its input as the row is written: an input that cannot be stored fails the event after the launch", async () => {
    await withRuntime("unstorable", 9, async (rt) => {
      // Not eager: startTask throws before anything ran, and the handler may catch it.
      assert.deepEqual(await rt.call("a", "startLazyUnstorable", ["q8"]), {
        ok: true,
        value: "BRIDGE_ERR_VALUE_ENCODE",
      });
      const r = await rt.call("a", "noteThenStartUnstorable", ["q9"]);
      assert.equal(r.ok, false);
      assert.equal(r.ok ? null : r.code, "BRIDGE_ERR_VALUE_ENCODE");
      await settle();
      assert.equal(idsAtRun.has("q9"), true, "the task had started");
      assertCancelled("q9");
      assert.deepEqual(seen, [], "neither its progress nor its result reached the agent");
      assert.deepEqual(await rt.call("a", "notes", []), { ok: true, value: [] }, "the event's own write rolled back");
      assert.deepEqual(await rt.call("a", "taskRows", []), { ok: true, value: [] });
    });
  });

  test("started inside transaction() is written when it ends: refused, transaction() throws and the task is aborted", async () => {
    await withRuntime("transaction", 5, async (rt) => {
      await rt.call("a", "refuseTaskRows", []);
      assert.deepEqual(await rt.call("a", "startInTransaction", ["q6", false]), {
        ok: true,
        value: "BRIDGE_ERR_STORAGE",
      });
      await rt.call("a", "allowTaskRows", []);
      assert.deepEqual(await rt.call("a", "startInTransaction", ["q7", true]), {
        ok: true,
        value: "the transaction fails after starting the task",
      });
      assert.deepEqual(await rt.call("a", "startInTransaction", ["q8", false]), { ok: true, value: "committed" });
      await settle();
      assertCancelled("q6");
      assertCancelled("q7");
      assert.deepEqual(seen, ["progress q8: progress:q8", "done q8: answer:q8"]);
      assert.deepEqual(await rt.call("a", "notes", []), { ok: true, value: ["q8"] });
    });
  });

  test("of a task cancelled before its row was written is still written, and its cancellation removes it", async () => {
    await withRuntime("cancelled", 6, async (rt) => {
      assert.deepEqual(await rt.call("a", "startThenCancel", ["q9"]), { ok: true, value: true });
      await settle();
      assert.deepEqual(seen, ["progress q9: progress:q9", "failed q9: BRIDGE_ERR_TASK_CANCELLED"]);
      assert.deepEqual(await rt.call("a", "taskRows", []), { ok: true, value: [] });
    });
  });

  test("of a task started outside any event is committed with that write", async () => {
    await withRuntime("timer", 7, async (rt) => {
      await rt.call("a", "startFromTimer", ["q10"]);
      await settle();
      assert.equal(rowsAtRun.get("q10"), 0, "the body started before the row was written");
      const rows = await rt.call("a", "taskRows", []);
      assert.deepEqual(rows, { ok: true, value: [`eager:${idsAtRun.get("q10")}`] });
      await settle();
      assert.deepEqual(seen, ["progress q10: progress:q10"]);
    });
  });

  test("reaches onTaskInterrupted after a crash once its event committed, and leaves nothing before", async () => {
    reset();
    const dataDir = path.join(t.dir, "crash");
    const rt = testRuntime(dataDir, RowAgent, 8);
    let held: Promise<unknown> = Promise.resolve();
    try {
      await rt.start();
      held = rt.call("a", "startThenHold", ["q11"]);
      await settle();
      assert.equal(rowsAtRun.get("q11"), 0, "the task runs, its event still open");
      const midEvent = crashSnapshot(dataDir, path.join(t.dir, "crash-mid-event"));
      releaseHold();
      assert.deepEqual(await held, { ok: true, value: null });
      const committed = crashSnapshot(dataDir, path.join(t.dir, "crash-committed"));

      for (const [dir, expected] of [
        [midEvent, []],
        [committed, ["interrupted q11"]],
      ] as const) {
        seen.length = 0;
        const next = testRuntime(dir, RowAgent, 9);
        try {
          await next.start();
          await settle();
          assert.deepEqual(seen, expected, dir);
        } finally {
          await next.shutdown();
        }
      }
    } finally {
      releaseHold();
      await held;
      await rt.shutdown();
    }
  });
});
