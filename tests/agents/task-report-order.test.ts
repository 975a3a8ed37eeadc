import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type AgentRuntime, type TaskInfo, type Value } from "../../agents/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { failControlOnce } from "./control-fault.ts";
import { settle, tempDir, testRuntime } from "./helpers.ts";

/** What the test can make the running task do: report progress, finish. */
interface TaskControl {
  progress(update: string): void;
  finish(result: string): void;
}
const controls = new Map<string, TaskControl>();

/** Opens the gate a `hold` event waits on. */
let releaseHold: () => void = () => {};
/** How many wakes still fail (the constructor throws, as for a database that cannot open). */
let failingWakes = 0;

/**
 * Records every task report it is given in a table, so only reports whose event committed count: the order of the
 * rows is the order in which the reports reached the agent for good.
 */
class Reporter extends Agent {
  constructor(...args: ConstructorParameters<typeof Agent>) {
    if (failingWakes > 0) {
      failingWakes--;
      throw new Error("cannot wake");
    }
    super(...args);
  }
  override onStart(): void {
    this.sql`CREATE TABLE IF NOT EXISTS reports (n INTEGER PRIMARY KEY AUTOINCREMENT, r TEXT)`;
  }
  begin(name: string): string {
    return this.startTask("work", name, (task) => {
      return new Promise<Value>((resolve) => {
        controls.set(name, { progress: (update) => task.progress(update), finish: resolve });
      });
    });
  }
  async hold(): Promise<void> {
    await new Promise<void>((resolve) => {
      releaseHold = resolve;
    });
  }
  note(): void {
    this.sql`INSERT INTO reports (r) VALUES ('note')`;
  }
  reports(): Value {
    return this.sql<{ r: string }>`SELECT r FROM reports WHERE r != 'note' ORDER BY n`.map((row) => row.r);
  }
  override onTaskProgress(_task: TaskInfo, update: Value): void {
    this.sql`INSERT INTO reports (r) VALUES (${`progress:${String(update)}`})`;
  }
  override onTaskDone(_task: TaskInfo, result: Value): void {
    this.sql`INSERT INTO reports (r) VALUES (${`done:${String(result)}`})`;
  }
  override onTaskInterrupted(task: TaskInfo): void {
    this.sql`INSERT INTO reports (r) VALUES (${`interrupted:${String(task.input)}`})`;
  }
}

/**
 * Starts task `name` on agent "r", then has it report progress `p1` while the mailbox is held, between two writing
 * events. `savepoint` picks which of the batch's savepoints fails (1: before p1, so p1 never starts; 2: after p1 ran,
 * so its progress event was taken): the batch is abandoned, p1 is handed back, and the wake that follows fails, so p1
 * is held for a later try (1 s).
 */
async function holdFirstProgress(rt: AgentRuntime, name: string, savepoint: 1 | 2): Promise<void> {
  assert.equal((await rt.call("r", "begin", [name])).ok, true);
  await settle();
  const hold = rt.call("r", "hold", []);
  await settle();
  const notes = [rt.call("r", "note", [])];
  controls.get(name)?.progress("p1");
  notes.push(rt.call("r", "note", []));
  let savepoints = 0;
  const fault = failControlOnce((text) => text === "SAVEPOINT ev" && ++savepoints === savepoint);
  failingWakes = 1;
  try {
    releaseHold();
    assert.deepEqual(await hold, { ok: true, value: null });
    for (const note of notes) assert.equal((await note).ok, false, "the batch was abandoned");
  } finally {
    fault.restore();
  }
  await settle();
  assert.equal(failingWakes, 0, "the wake after the abandoned batch failed: p1 is held");
}

describe("a task's reports held for a later try", () => {
  const t = tempDir();
  after(() => t.remove());

  test("a later progress of the same task waits behind a held progress, which reaches the agent first", async () => {
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "progress"), Reporter, 1, { clock });
    try {
      await holdFirstProgress(rt, "a", 2);
      controls.get("a")?.progress("p2");
      await settle();
      assert.deepEqual(await rt.call("r", "reports", []), { ok: true, value: [] }, "p2 does not overtake p1");
      await clock.advance(1_000);
      controls.get("a")?.finish("end");
      await settle();
      assert.deepEqual(await rt.call("r", "reports", []), {
        ok: true,
        value: ["progress:p1", "progress:p2", "done:end"],
      });
    } finally {
      failingWakes = 0;
      await rt.shutdown();
    }
  });

  test("the task's outcome waits behind its held progress instead of finishing the task before it", async () => {
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "outcome"), Reporter, 2, { clock });
    try {
      await holdFirstProgress(rt, "b", 1);
      controls.get("b")?.finish("end");
      await settle();
      assert.deepEqual(await rt.call("r", "reports", []), { ok: true, value: [] }, "done does not overtake p1");
      await clock.advance(1_000);
      assert.deepEqual(await rt.call("r", "reports", []), { ok: true, value: ["progress:p1", "done:end"] });
    } finally {
      failingWakes = 0;
      await rt.shutdown();
    }
  });

  test("a later report that waits in the mailbox of a busy agent when the held one's try comes still runs after it", async () => {
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "busy"), Reporter, 3, { clock });
    try {
      await holdFirstProgress(rt, "c", 2);
      // The agent is busy (an event awaits) when the task reports again: p2 waits in the mailbox, not taken yet.
      const hold = rt.call("r", "hold", []);
      await settle();
      controls.get("c")?.progress("p2");
      await settle();
      await clock.advance(1_000);
      releaseHold();
      assert.deepEqual(await hold, { ok: true, value: null });
      await settle();
      controls.get("c")?.finish("end");
      await settle();
      assert.deepEqual(await rt.call("r", "reports", []), {
        ok: true,
        value: ["progress:p1", "progress:p2", "done:end"],
      });
    } finally {
      failingWakes = 0;
      await rt.shutdown();
    }
  });
});
