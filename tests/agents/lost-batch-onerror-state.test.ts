import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type AgentRuntime } from "../../agents/index.ts";
import { settle, tempDir, testRuntime } from "./helpers.ts";

// SQLite rolls a batch's whole transaction back on its own for an event with a savepoint (INSERT OR ROLLBACK): the
// earlier events of the batch fail with it and their in-memory changes are undone (agents/cell-batch.ts, failEvent).
// The failing event's onError runs outside any transaction, so a setState there commits on its own. Memory must end
// as the database does: the undo of the earlier events must not run over the state onError committed.

class Keeper extends Agent<{ v: string }> {
  static override callable = ["set", "lose", "get"];
  override initialState = { v: "init" };
  override onStart(): void {
    this.sql`CREATE TABLE IF NOT EXISTS u (k INTEGER PRIMARY KEY)`;
    this.sql`INSERT OR IGNORE INTO u (k) VALUES (1)`;
  }
  set(v: string): string {
    this.setState({ v });
    return v;
  }
  /** SQLite rolls the whole transaction back on its own, and the event fails with it. */
  lose(): never {
    this.sql`INSERT OR ROLLBACK INTO u (k) VALUES (1)`;
    throw new Error("unreachable");
  }
  get(): string {
    return this.state.v;
  }
  override onError(_error: unknown, ctx: { event: string }): void {
    if (ctx.event === "call") this.setState({ v: "onError" });
  }
}

describe("a batch whose transaction SQLite lost", () => {
  const t = tempDir();
  after(() => t.remove());

  test("the earlier events' undo does not overwrite the state the failing event's onError committed", async () => {
    const dir = path.join(t.dir, "state");
    let rt: AgentRuntime = testRuntime(dir, Keeper, 1);
    try {
      // Woken first, so the batch below is the two calls alone.
      assert.deepEqual(await rt.call("a", "get", []), { ok: true, value: "init" });
      const results = await Promise.all([rt.call("a", "set", ["batch"]), rt.call("a", "lose", [])]);
      await settle();
      assert.deepEqual(
        results.map((r) => r.ok),
        [false, false],
        "the earlier event fails with the lost transaction",
      );
      assert.deepEqual(await rt.call("a", "get", []), { ok: true, value: "onError" }, "in memory");
    } finally {
      await rt.shutdown();
    }
    rt = testRuntime(dir, Keeper, 2);
    try {
      assert.deepEqual(await rt.call("a", "get", []), { ok: true, value: "onError" }, "stored");
    } finally {
      await rt.shutdown();
    }
  });
});
