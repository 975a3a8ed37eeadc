import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent } from "../../agents/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { settle, tempDir, testRuntime } from "./helpers.ts";

let gate: Promise<void> = Promise.resolve();

class Timer extends Agent<{ rung: number; n: number }> {
  static override callable = ["arm", "rung", "slowBump"];
  override initialState = { rung: 0, n: 0 };
  arm(): void {
    this.schedule(10, "ring");
  }
  ring(): void {
    this.setState({ ...this.state, rung: this.state.rung + 1 });
  }
  rung(): number {
    return this.state.rung;
  }
  /** Holds its event open until the test opens the gate: the backup's copy of this agent waits behind it. */
  async slowBump(): Promise<void> {
    this.setState({ ...this.state, n: this.state.n + 1 });
    await gate;
  }
}

describe("runtime backup: runtime.db and the agents agree", () => {
  const t = tempDir("runtime-backup-alarms-");
  after(() => t.remove());

  test("a schedule that fires between its agent's copy and runtime.db's still fires in the restored runtime", async () => {
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "live"), Timer, 1, { clock, maxActiveAgents: 1 });
    const out = path.join(t.dir, "copy");
    let open = (): void => {};
    gate = new Promise((resolve) => {
      open = resolve;
    });
    try {
      await rt.start();
      await rt.call("a", "arm", []);
      await rt.call("b", "rung", []);
      await settle();
      assert.equal(rt.stats().hibernated, 1, "a is on disk only, with its schedule due in 10 s");
      const slow = rt.call("b", "slowBump", []);
      await settle();
      // a is copied first (its schedule not yet run); its alarm then fires and runs while b's copy waits behind b's
      // slow event, so runtime.db is copied once a's alarm row is gone.
      const backup = rt.backup(out, {
        concurrency: 1,
        onAgent: ({ agentId }) => {
          if (agentId === "a") clock.advanceSync(10_000);
        },
      });
      await settle();
      assert.deepEqual(await rt.call("a", "rung", []), { ok: true, value: 1 }, "the live schedule ran");
      open();
      await slow;
      assert.equal((await backup).agents, 2);
      assert.deepEqual(fs.readdirSync(out).sort(), ["agents", "runtime.db"], "the rows' write leaves no WAL behind");
    } finally {
      gate = Promise.resolve();
      await rt.shutdown();
    }
    const restoredClock = new ManualClock(clock.now());
    const restored = testRuntime(out, Timer, 2, { clock: restoredClock });
    try {
      await restored.start();
      await restoredClock.advance(60_000);
      await settle();
      assert.deepEqual(await restored.call("a", "rung", []), { ok: true, value: 1 }, "the copied schedule ran");
    } finally {
      await restored.shutdown();
    }
  });

  test("an agent destroyed after its copy is left out of the backup, as one destroyed before it", async () => {
    const rt = testRuntime(path.join(t.dir, "destroyed"), Timer, 3);
    const out = path.join(t.dir, "destroyed-copy");
    try {
      await rt.call("a", "arm", []);
      await rt.call("b", "arm", []);
      const result = await rt.backup(out, {
        concurrency: 1,
        onAgent: ({ agentId }) => {
          if (agentId === "a") void rt.destroyAgent("a");
        },
      });
      assert.deepEqual(fs.readdirSync(path.join(out, "agents")), ["b.db"]);
      assert.equal(result.agents, 1);
      assert.equal(
        result.bytes,
        fs.statSync(path.join(out, "agents", "b.db")).size + fs.statSync(path.join(out, "runtime.db")).size,
      );
    } finally {
      await rt.shutdown();
    }
    const restored = testRuntime(out, Timer, 4);
    try {
      await restored.start();
      assert.equal(restored.stats().hibernated, 1, "only b is there");
    } finally {
      await restored.shutdown();
    }
  });
});
