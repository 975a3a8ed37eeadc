/**
 * A batch abandoned to a storage fault (a control statement outside any handler fails, cell-mailbox.ts, abandonBatch)
 * drops the agent instance and its database handle, and the next event wakes a fresh instance in the same cell. An
 * instance kept by agent code from before (a timer, a closure) is stale then, as after a hibernation: its calls into
 * the runtime throw BRIDGE_ERR_AGENT_HIBERNATED. Before, they went through the shared cell to the fresh instance's
 * database and state: a late setState of the dropped instance committed over the live one's.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, test } from "node:test";
import { Agent } from "../../agents/index.ts";
import { BridgeError } from "../../errors/bridge-error.ts";
import { failControlOnce } from "./control-fault.ts";
import { settle, tempDir, testRuntime } from "./helpers.ts";

const t = tempDir();
after(() => t.remove());

/** Every instance the runtime made, in order. */
const instances: Keeper[] = [];

class Keeper extends Agent<{ v: string }> {
  override initialState = { v: "init" };
  override onStart(): void {
    instances.push(this);
  }
  write(): null {
    this.sql`CREATE TABLE IF NOT EXISTS u (k INTEGER PRIMARY KEY)`;
    this.sql`INSERT OR REPLACE INTO u (k) VALUES (1)`;
    return null;
  }
  get(): string {
    return this.state.v;
  }
  rows(): number {
    return this.sql<{ n: number }>`SELECT count(*) AS n FROM u`[0].n;
  }
}

const hibernated = (err: unknown) => err instanceof BridgeError && err.code === "BRIDGE_ERR_AGENT_HIBERNATED";

test("an instance dropped with an abandoned batch cannot reach the fresh instance's database or state", async () => {
  const rt = testRuntime(path.join(t.dir, "abandoned"), Keeper, 1);
  try {
    assert.deepEqual(await rt.call("a", "write", []), { ok: true, value: null });
    // The second event's SAVEPOINT fails (the first one wrote): the batch is abandoned, the instance dropped.
    const fault = failControlOnce((text) => text === "SAVEPOINT ev");
    try {
      const results = await Promise.all([rt.call("a", "write", []), rt.call("a", "get", [])]);
      assert.deepEqual(
        results.map((r) => r.ok),
        [false, false],
      );
    } finally {
      fault.restore();
    }
    assert.deepEqual(await rt.call("a", "get", []), { ok: true, value: "init" });
    assert.equal(instances.length, 2, "a fresh instance woke");
    const stale = instances[0];
    assert.throws(() => stale.setState({ v: "stale" }), hibernated);
    assert.throws(() => stale.sql`DELETE FROM u`, hibernated);
    assert.throws(() => stale.env.directory.put("kind", "key", 1), hibernated);
    await settle();
    assert.deepEqual(await rt.call("a", "get", []), { ok: true, value: "init" }, "the live state is untouched");
    assert.deepEqual(await rt.call("a", "rows", []), { ok: true, value: 1 }, "the live database is untouched");
    assert.deepEqual(rt.directory.list("kind"), []);
  } finally {
    await rt.shutdown();
  }
});
