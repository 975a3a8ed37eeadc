import assert from "node:assert/strict";
import path from "node:path";
import { after, test } from "node:test";
import { Agent, type TaskInfo, type Value } from "../../agents/index.ts";
import { tempDir, testRuntime } from "./helpers.ts";

// A shutdown() while start() still wakes the agents marked pending at the last stop (docs/agents.md, "The runtime"):
// the start wakes no further agent, the shutdown waits for the wakes in flight (no database is closed under an
// onStart), and every agent left unwoken keeps its pending mark for the next start.

const t = tempDir();
after(() => t.remove());

/** Agents inside onStart now, those that entered it, and those told of their interrupted task. */
const seen = { starting: 0, started: [] as string[], interrupted: [] as string[], entered: () => {} };

/** Leaves a task unfinished at shutdown (its row keeps the agent pending) and awaits in onStart. */
class Sleeper extends Agent {
  static override callable = ["begin"];
  override async onStart(): Promise<void> {
    seen.starting++;
    seen.started.push(this.id);
    seen.entered();
    await new Promise((resolve) => setImmediate(resolve));
    // Reads its own database after the await: closed under it, this throws.
    this.sql`SELECT 1`;
    seen.starting--;
  }
  begin(): string {
    return this.startTask("forever", null, () => new Promise<Value>(() => {}));
  }
  override onTaskInterrupted(_task: TaskInfo): void {
    seen.interrupted.push(this.id);
  }
}

test("a shutdown during start waits for the wakes in flight and leaves the rest for the next start", async () => {
  const dataDir = path.join(t.dir, "pending");
  // More than the shutdown's rounds (100) could wait for one wake at a time: before the start stopped at a
  // shutdown, it went on waking them and the shutdown closed the last ones in the middle of their onStart.
  const ids = Array.from({ length: 110 }, (_, i) => `s${String(i).padStart(3, "0")}`);
  const first = testRuntime(dataDir, Sleeper, 1);
  await first.start();
  for (const id of ids) assert.equal((await first.call(id, "begin", [])).ok, true);
  await first.shutdown();
  seen.started = [];

  const errors: Array<{ agentId: string; event: string; code: string }> = [];
  // One wake at a time (min(maxActiveAgents, 64)).
  const second = testRuntime(dataDir, Sleeper, 2, { maxActiveAgents: 1, observer: { onError: (e) => errors.push(e) } });
  const firstStart = new Promise<void>((resolve) => {
    seen.entered = resolve;
  });
  const starting = second.start();
  await firstStart;
  seen.entered = () => {};
  await second.shutdown();
  assert.equal(seen.starting, 0, "no onStart is still running once shutdown() resolved");
  await starting;
  assert.deepEqual(errors, [], "no wake failed on a database closed under it");
  assert.deepEqual(seen.started, [ids[0]], "the start woke no further agent once the shutdown began");

  // The agent woken during the shutdown kept its task row (reported at the next start), the others their marks.
  const third = testRuntime(dataDir, Sleeper, 3);
  try {
    await third.start();
    assert.deepEqual([...seen.interrupted].sort(), ids, "the next start woke every agent that was pending");
  } finally {
    await third.shutdown();
  }
});
