/** Eager tasks (`startTask(..., { eager: true })`): started inside the event, reporting only after it committed. */
import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type AgentRuntime, type RuntimeOptions, type TaskInfo, type Value } from "../../agents/index.ts";
import { BridgeError } from "../../errors/index.ts";
import { failControlOnce } from "./control-fault.ts";
import { settle, tempDir, testRuntime } from "./helpers.ts";

const seen: string[] = [];
/** The abort reason each eager task's signal received, by question. */
const aborted = new Map<string, unknown>();
/** Set by an event: the batch's next savepoint fails, a storage fault outside any handler that abandons the batch. */
let failNextSavepoint = false;

class EagerAgent extends Agent {
  /** Starts a task that reports progress and finishes at once; returns what ran before the handler went on. */
  quick(q: string): Value {
    const order: string[] = [];
    this.#start(q, order, () => Promise.resolve(`answer:${q}`));
    order.push("handler after startTask");
    return order;
  }

  /** Starts a task that only ends when aborted, then fails the event. */
  quickThenThrow(q: string): void {
    this.#start(
      q,
      [],
      (signal) => new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason))),
    );
    throw new Error("the event fails after starting the task");
  }

  /** Starts a task that only ends when aborted; the next event of the batch then cannot open its savepoint. */
  quickThenFault(q: string): void {
    this.#start(
      q,
      [],
      (signal) => new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason))),
    );
    failNextSavepoint = true;
  }

  /** Starts a task that reports and finishes while the handler still awaits, then fails the event. */
  async settleThenThrow(q: string): Promise<void> {
    this.#start(q, [], () => Promise.resolve(`answer:${q}`));
    await new Promise((resolve) => setTimeout(resolve, 5));
    throw new Error("the event fails after its task finished");
  }

  /** Starts a task whose synchronous start throws. */
  throwsAtStart(q: string): void {
    this.startTask(
      "eager",
      { q },
      () => {
        throw new Error("refused at once");
      },
      { eager: true },
    );
  }

  running(): Value {
    return this.getTasks().map((t) => (t.input as { q: string }).q);
  }

  #start(q: string, order: string[], body: (signal: AbortSignal) => Promise<Value>): void {
    this.startTask(
      "eager",
      { q },
      (task) => {
        order.push("task running");
        task.signal.addEventListener("abort", () => aborted.set(q, task.signal.reason));
        task.progress(`progress:${q}`);
        return body(task.signal);
      },
      { eager: true },
    );
  }

  override onTaskProgress(task: TaskInfo, update: Value): void {
    seen.push(`progress ${(task.input as { q: string }).q}: ${update}`);
  }
  override onTaskDone(task: TaskInfo, result: Value): void {
    seen.push(`done ${(task.input as { q: string }).q}: ${result}`);
  }
  override onTaskFailed(task: TaskInfo, error: { code: string; message: string }): void {
    seen.push(`failed ${(task.input as { q: string }).q}: ${error.code} ${error.message}`);
  }
}

/** Starts, as it wakes, an eager task that fails at once (its engine refused the request, say). */
class StartsAtWake extends Agent {
  override onStart(): void {
    this.startTask(
      "eager",
      { q: "wake" },
      () => {
        throw new Error("refused at once");
      },
      { eager: true },
    );
  }
  ping(): Value {
    return "pong";
  }
  override onTaskFailed(task: TaskInfo, error: { code: string; message: string }): void {
    seen.push(`failed ${(task.input as { q: string }).q}: ${error.code}`);
  }
  override onTaskInterrupted(task: TaskInfo): void {
    seen.push(`interrupted ${(task.input as { q: string }).q}`);
  }
}

describe("eager background tasks", () => {
  const t = tempDir();
  after(() => t.remove());

  /** Runs `fn` on a fresh runtime of `agentClass` in folder `dir` of the suite, reports cleared; then shuts it down. */
  async function withRuntime(
    dir: string,
    agentClass: RuntimeOptions["defaultAgentClass"],
    seed: number,
    fn: (rt: AgentRuntime) => Promise<void>,
  ): Promise<void> {
    seen.length = 0;
    aborted.clear();
    const rt = testRuntime(path.join(t.dir, dir), agentClass, seed);
    try {
      await fn(rt);
    } finally {
      await rt.shutdown();
    }
  }

  test("an eager task starts inside the event; its reports reach the agent after the event committed", async () => {
    await withRuntime("quick", EagerAgent, 1, async (rt) => {
      const r = await rt.call("a", "quick", ["q1"]);
      assert.deepEqual(r, { ok: true, value: ["task running", "handler after startTask"] });
      await settle();
      assert.deepEqual(seen, ["progress q1: progress:q1", "done q1: answer:q1"]);
      assert.deepEqual(await rt.call("a", "running", []), { ok: true, value: [] });
    });
  });

  test("an event that rolls back aborts its eager task with TASK_CANCELLED and nothing of the task reaches the agent", async () => {
    await withRuntime("rollback", EagerAgent, 2, async (rt) => {
      const r = await rt.call("a", "quickThenThrow", ["q2"]);
      assert.equal(r.ok, false);
      await settle();
      const reason = aborted.get("q2");
      assert.ok(reason instanceof BridgeError, "the task's signal was aborted");
      assert.equal(reason.code, "BRIDGE_ERR_TASK_CANCELLED");
      assert.deepEqual(seen, [], "no progress and no failure of a task whose event rolled back");
      assert.deepEqual(await rt.call("a", "running", []), { ok: true, value: [] });
    });
  });

  test("reports an eager task made before its event rolled back are dropped, even when the task already ended", async () => {
    await withRuntime("settled", EagerAgent, 3, async (rt) => {
      const r = await rt.call("a", "settleThenThrow", ["q3"]);
      assert.equal(r.ok, false);
      await settle();
      assert.deepEqual(seen, [], "the task's progress and result were held, then dropped with the event");
      // The agent goes on normally after it.
      assert.deepEqual(await rt.call("a", "quick", ["q4"]), {
        ok: true,
        value: ["task running", "handler after startTask"],
      });
      await settle();
      assert.deepEqual(seen, ["progress q4: progress:q4", "done q4: answer:q4"]);
    });
  });

  test("a batch abandoned to a storage fault aborts the eager tasks its events started and drops their reports", async () => {
    seen.length = 0;
    aborted.clear();
    const rt = testRuntime(path.join(t.dir, "abandoned"), EagerAgent, 5);
    const fault = failControlOnce((text) => failNextSavepoint && text === "SAVEPOINT ev");
    try {
      assert.deepEqual(await rt.call("a", "running", []), { ok: true, value: [] });
      // One batch of two events: the first starts its task, the second's savepoint fails and the batch is abandoned.
      const [first, second] = await Promise.all([rt.call("a", "quickThenFault", ["q6"]), rt.call("a", "running", [])]);
      assert.equal(first.ok, false);
      assert.equal(second.ok, false);
      await settle();
      const reason = aborted.get("q6");
      assert.ok(reason instanceof BridgeError, "the task's signal was aborted");
      assert.equal(reason.code, "BRIDGE_ERR_TASK_CANCELLED");
      assert.deepEqual(seen, []);
      assert.deepEqual(await rt.call("a", "running", []), { ok: true, value: [] }, "no task left of the batch");
    } finally {
      fault.restore();
      failNextSavepoint = false;
      await rt.shutdown();
    }
  });

  test("an eager task started by onStart that ends before the start event's end is not taken for an interrupted one", async () => {
    await withRuntime("wake", StartsAtWake, 6, async (rt) => {
      assert.deepEqual(await rt.call("a", "ping", []), { ok: true, value: "pong" });
      await settle();
      assert.deepEqual(seen, ["failed wake: BRIDGE_ERR_TASK_FAILED"]);
    });
  });

  test("an eager task whose start throws fails like any task, after its event committed", async () => {
    await withRuntime("throws", EagerAgent, 4, async (rt) => {
      assert.deepEqual(await rt.call("a", "throwsAtStart", ["q5"]), { ok: true, value: null });
      await settle();
      assert.deepEqual(seen, ["failed q5: BRIDGE_ERR_TASK_FAILED refused at once"]);
    });
  });
});
