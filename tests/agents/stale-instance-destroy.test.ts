/**
 * An agent object kept by agent code after its agent hibernated (a timer of its own, a closure) is stale: its calls
 * into the runtime throw BRIDGE_ERR_AGENT_HIBERNATED (docs/errors.md), destroy() among them. Before, destroy() went
 * through the stale object's closed cell and destroyed the agent from under the instance the runtime had woken since:
 * its database file was unlinked while that instance still had it open, and its cell was dropped from the registry
 * without being closed, so the next event made a third instance on a new, empty database beside it.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, test } from "node:test";
import { Agent } from "../../agents/index.ts";
import { BridgeError } from "../../errors/bridge-error.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { tempDir, testRuntime } from "./helpers.ts";

const t = tempDir();
after(() => t.remove());

/** Every instance the runtime made, in order. */
const instances: Agent[] = [];

class Keeper extends Agent<{ n: number }> {
  override initialState = { n: 0 };
  override onStart(): void {
    instances.push(this);
  }
  bump(): number {
    this.setState({ n: this.state.n + 1 });
    return this.state.n;
  }
}

test("destroy() of an instance that hibernated is refused and leaves the agent's live instance and data alone", async () => {
  const clock = new ManualClock();
  const dataDir = path.join(t.dir, "stale");
  const rt = testRuntime(dataDir, Keeper, 1, { clock, idleTimeoutMs: 1_000 });
  try {
    assert.deepEqual(await rt.call("k", "bump", []), { ok: true, value: 1 });
    await clock.advance(2_000);
    assert.equal(rt.stats().active, 0, "the first instance hibernated");
    assert.deepEqual(await rt.call("k", "bump", []), { ok: true, value: 2 });
    assert.equal(instances.length, 2);
    const stale = instances[0];
    assert.throws(
      () => stale.destroy(),
      (err: unknown) => err instanceof BridgeError && err.code === "BRIDGE_ERR_AGENT_HIBERNATED",
    );
    assert.equal(fs.existsSync(path.join(dataDir, "agents", "k.db")), true, "the database is still there");
    assert.equal(rt.stats().active, 1, "the live instance is still the agent's");
    assert.deepEqual(await rt.call("k", "bump", []), { ok: true, value: 3 }, "on the live instance, data kept");
    assert.equal(instances.length, 2, "no third instance");
    // The live instance's own destroy() still works.
    await instances[1].destroy();
    assert.equal(fs.existsSync(path.join(dataDir, "agents", "k.db")), false);
  } finally {
    await rt.shutdown();
  }
});

test("setState, schedule and queue of an instance that hibernated throw BRIDGE_ERR_AGENT_HIBERNATED, not a TypeError", async () => {
  const clock = new ManualClock();
  const rt = testRuntime(path.join(t.dir, "stale-writes"), Keeper, 1, { clock, idleTimeoutMs: 1_000 });
  try {
    instances.length = 0;
    assert.deepEqual(await rt.call("w", "bump", []), { ok: true, value: 1 });
    await clock.advance(2_000);
    assert.equal(rt.stats().active, 0, "hibernated");
    const stale = instances[0];
    const hibernated = (err: unknown) => err instanceof BridgeError && err.code === "BRIDGE_ERR_AGENT_HIBERNATED";
    assert.throws(() => stale.setState({ n: 9 }), hibernated);
    assert.throws(() => stale.schedule(60, "bump"), hibernated);
    assert.throws(() => stale.queue("bump", null), hibernated);
    assert.deepEqual(await rt.call("w", "bump", []), { ok: true, value: 2 }, "nothing of the stale calls was written");
  } finally {
    await rt.shutdown();
  }
});
