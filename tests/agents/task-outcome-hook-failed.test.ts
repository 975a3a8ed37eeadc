/**
 * When a task's outcome hook fails, the task is done with all the same, so whatever waited for its outcome would wait
 * for good: the runtime tells the agent (OUTCOME_HOOK_FAILED, agents/agent.ts) once, in a savepoint of its own inside
 * that event. And `hasTask(id)` says whether a task still has an outcome to come, the ones that ended with their
 * report waiting in the mailbox included.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, test } from "node:test";
import { OUTCOME_HOOK_FAILED } from "../../agents/agent.ts";
import { Agent, type AgentRuntime, type TaskInfo, type Value } from "../../agents/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { settle, tempDir, testRuntime } from "./helpers.ts";

/** Ends a running task from outside, by its question. */
const finishers = new Map<string, { resolve(v: Value): void; reject(err: Error): void }>();
/** The `event` of every onError call, in order. */
const errors: string[] = [];
/** Lets a `check` event go on. */
let release: () => void = () => {};
/** Never settles: an outcome hook that returns it runs past the time limit. */
const NEVER = new Promise<void>(() => {});

class Waiter extends Agent {
  override onStart(): void {
    this.sql`CREATE TABLE IF NOT EXISTS notes (n TEXT)`;
  }

  begin(q: string): string {
    return this.startTask("answer", { q }, () => {
      return new Promise<Value>((resolve, reject) => {
        finishers.set(q, { resolve, reject });
      });
    });
  }

  /** Waits for the test, then says what the agent knows of task `id`. */
  async check(id: string): Promise<Value> {
    await new Promise<void>((resolve) => {
      release = resolve;
    });
    return { has: this.hasTask(id), running: this.getTasks().length };
  }

  has(id: string): boolean {
    return this.hasTask(id);
  }

  notes(): Value {
    return this.sql<{ n: string }>`SELECT n FROM notes ORDER BY rowid`.map((r) => r.n);
  }

  #outcome(task: TaskInfo, what: string): void | Promise<void> {
    const q = (task.input as { q: string }).q;
    this.sql`INSERT INTO notes (n) VALUES (${`${what}:${q}`})`;
    if (q.startsWith("hang")) return NEVER;
    if (q.startsWith("throw")) throw new Error(`${what} fails for ${q}`);
  }

  override onTaskDone(task: TaskInfo): void | Promise<void> {
    return this.#outcome(task, "done");
  }

  override onTaskFailed(task: TaskInfo): void | Promise<void> {
    return this.#outcome(task, "failed");
  }

  override onTaskInterrupted(task: TaskInfo): void | Promise<void> {
    return this.#outcome(task, "interrupted");
  }

  override [OUTCOME_HOOK_FAILED](task: TaskInfo): void {
    const q = (task.input as { q: string }).q;
    // The row is still there: the hook's failure is told before the task is done with.
    this.sql`INSERT INTO notes (n) VALUES (${`lost:${q}:${task.kind}:${this.hasTask(task.id)}`})`;
    if (q.endsWith("twice")) throw new Error(`telling fails for ${q}`);
  }

  override onError(_error: unknown, context: { event: string }): void {
    errors.push(context.event);
  }
}

const t = tempDir("outcome-hook-failed-");
const runtimes: AgentRuntime[] = [];
after(async () => {
  for (const rt of runtimes) await rt.shutdown();
  t.remove();
});

async function runtime(name: string, clock = new ManualClock()): Promise<AgentRuntime> {
  const rt = testRuntime(path.join(t.dir, name), Waiter, 7, { clock, callbackTimeoutMs: 1000 });
  runtimes.push(rt);
  await rt.start();
  return rt;
}

async function call<T>(rt: AgentRuntime, method: string, ...args: Value[]): Promise<T> {
  const result = await rt.call("w", method, args);
  if (!result.ok) throw new Error(`${method}: ${result.code} ${result.message}`);
  return result.value as T;
}

test("a failed outcome hook rolls back, then the agent is told of the task once and its writes commit; the task is done with", async () => {
  errors.length = 0;
  const rt = await runtime("told");
  const ok = await call<string>(rt, "begin", "fine");
  const done = await call<string>(rt, "begin", "throw-done");
  const failed = await call<string>(rt, "begin", "throw-failed");
  finishers.get("fine")!.resolve("yes");
  finishers.get("throw-done")!.resolve("yes");
  finishers.get("throw-failed")!.reject(new Error("no"));
  await settle();
  assert.deepEqual(await call(rt, "notes"), [
    "done:fine",
    "lost:throw-done:answer:true",
    "lost:throw-failed:answer:true",
  ]);
  assert.deepEqual(errors, ["onTaskDone", "onTaskFailed"]);
  for (const id of [ok, done, failed]) assert.equal(await call(rt, "has", id), false, id);
});

test("when telling the agent fails too, that is reported under the hook's name, rolls back, and is not tried again", async () => {
  errors.length = 0;
  const rt = await runtime("twice");
  const id = await call<string>(rt, "begin", "throw-twice");
  finishers.get("throw-twice")!.resolve("yes");
  await settle();
  assert.deepEqual(errors, ["onTaskDone", "onTaskDone"]);
  await settle();
  assert.deepEqual(errors, ["onTaskDone", "onTaskDone"]);
  assert.deepEqual(await call(rt, "notes"), []);
  assert.equal(await call(rt, "has", id), false);
});

test("an onTaskInterrupted that fails at a start is told the same way, in the start event", async () => {
  errors.length = 0;
  const first = await runtime("restart");
  await call<string>(first, "begin", "throw-interrupted");
  await first.shutdown();
  const rt = await runtime("restart");
  assert.deepEqual(await call(rt, "notes"), ["lost:throw-interrupted:answer:false"]);
  assert.deepEqual(errors, ["onTaskInterrupted"]);
});

test("an outcome hook that runs past the time limit retires its instance, which is not told", async () => {
  errors.length = 0;
  const clock = new ManualClock();
  const rt = await runtime("hang", clock);
  const id = await call<string>(rt, "begin", "hang");
  finishers.get("hang")!.resolve("yes");
  await settle();
  await clock.advance(1000);
  await settle();
  assert.deepEqual(await call(rt, "notes"), []);
  assert.deepEqual(errors, ["onTaskDone"]);
  assert.equal(await call(rt, "has", id), false);
});

test("hasTask counts a task that ended while its report waits in the mailbox, which getTasks does not list", async () => {
  const rt = await runtime("has");
  const id = await call<string>(rt, "begin", "waiting");
  assert.equal(await call(rt, "has", id), true);
  const checked = call(rt, "check", id);
  await settle();
  // The report of the task's end queues behind the check, which holds the mailbox.
  finishers.get("waiting")!.resolve("yes");
  await settle();
  release();
  assert.deepEqual(await checked, { has: true, running: 0 });
  await settle();
  assert.equal(await call(rt, "has", id), false);
  assert.equal(await call(rt, "has", "no-such-task"), false);
  assert.deepEqual(await call(rt, "notes"), ["done:waiting"]);
});
