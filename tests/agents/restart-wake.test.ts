import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type TaskInfo, type Value } from "../../agents/index.ts";
import { tempDir, testRuntime } from "./helpers.ts";

/** How many agents are inside onStart right now, the most seen at once, and who was told of an interrupted task. */
const starts = { now: 0, most: 0, interrupted: [] as string[], counting: false };

/**
 * Leaves a task unfinished at shutdown (its row marks the agent pending, so the next start() wakes it), and awaits in
 * onStart, so a woken agent stays in memory until the next turn of the event loop.
 */
class Sleeper extends Agent {
  static override callable = ["begin"];
  override async onStart(): Promise<void> {
    if (!starts.counting) return;
    starts.now++;
    starts.most = Math.max(starts.most, starts.now);
    await new Promise((resolve) => setImmediate(resolve));
    starts.now--;
  }
  begin(): string {
    return this.startTask("forever", null, () => new Promise<Value>(() => {}));
  }
  override onTaskInterrupted(_task: TaskInfo): void {
    starts.interrupted.push(this.id);
  }
}

describe("start() after a restart", () => {
  const t = tempDir();
  after(() => t.remove());

  test("wakes pending agents a few at a time, never more at once than maxActiveAgents", async () => {
    const dataDir = path.join(t.dir, "many");
    const ids = Array.from({ length: 40 }, (_, i) => `s${i}`);
    const first = testRuntime(dataDir, Sleeper, 1);
    await first.start();
    for (const id of ids) assert.equal((await first.call(id, "begin", [])).ok, true);
    await first.shutdown();

    starts.counting = true;
    const second = testRuntime(dataDir, Sleeper, 2, { maxActiveAgents: 4 });
    try {
      await second.start();
      assert.equal(starts.most, 4, "at most maxActiveAgents agents were starting at once");
      assert.deepEqual([...starts.interrupted].sort(), [...ids].sort(), "every pending agent was woken");
      assert.ok(second.stats().active <= 4, `active ${second.stats().active}`);
    } finally {
      starts.counting = false;
      await second.shutdown();
    }
  });
});
