import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type TaskInfo, type Value } from "../../agents/index.ts";
import { settle, tempDir, testRuntime } from "./helpers.ts";
import { statementSpy } from "./statement-spy.ts";

let driver: { progress(update: Value): void; finish(): void } | null = null;
const seen: Array<{ info: TaskInfo; update: Value }> = [];
const outcomes: TaskInfo[] = [];

class Streamer extends Agent {
  static override callable = ["stream"];
  stream(): string {
    const input = { turn: "t-1", tags: ["a"] };
    const id = this.startTask(
      "tokens",
      input,
      (task) =>
        new Promise<Value>((resolve) => {
          driver = { progress: (u) => task.progress(u), finish: () => resolve("end") };
        }),
    );
    // Changed after the start: the task's events must still see the input as it was stored.
    input.turn = "changed";
    return id;
  }
  override onTaskProgress(task: TaskInfo, update: Value): void {
    seen.push({ info: task, update });
  }
  override onTaskDone(task: TaskInfo): void {
    outcomes.push(task);
  }
}

describe("task events and the task row", () => {
  const t = tempDir();
  after(() => t.remove());

  test("progress and outcome events of a running task read neither the task row nor the queue, and see the stored input", async () => {
    const { spy, restore } = statementSpy();
    const rt = testRuntime(path.join(t.dir, "no-select"), Streamer, 5);
    try {
      const started = await rt.call("a", "stream", []);
      assert.equal(started.ok, true);
      await settle();
      assert.ok(driver !== null);
      spy.on = true;
      driver.progress("one");
      await settle();
      driver.progress("two");
      await settle();
      const duringProgress = spy.executed.splice(0);
      assert.deepEqual(
        duringProgress.filter((s) => /_bridge_tasks|_bridge_queue/.test(s)),
        [],
        `statements while streaming: ${duringProgress.join(" | ")}`,
      );
      driver.finish();
      await settle();
      spy.on = false;
      assert.deepEqual(
        spy.executed.filter((s) => /^SELECT \* FROM _bridge_tasks WHERE id/.test(s)),
        [],
        "the outcome event deletes the row without reading it first",
      );
      assert.ok(
        spy.executed.some((s) => /^DELETE FROM _bridge_tasks/.test(s)),
        "the row is removed",
      );
      assert.deepEqual(
        seen.map((s) => s.update),
        ["one", "two"],
      );
      const id = started.ok ? started.value : null;
      for (const { info } of seen) {
        assert.equal(info.id, id);
        assert.equal(info.kind, "tokens");
        assert.deepEqual(info.input, { turn: "t-1", tags: ["a"] });
      }
      assert.notEqual(seen[0].info.input, seen[1].info.input, "each event decodes its own copy of the input");
      assert.equal(outcomes.length, 1);
      assert.deepEqual(outcomes[0].input, { turn: "t-1", tags: ["a"] });
    } finally {
      restore();
      driver = null;
      await rt.shutdown();
    }
  });
});
