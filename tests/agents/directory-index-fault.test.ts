import assert from "node:assert/strict";
import path from "node:path";
import { after, test } from "node:test";
import { Agent, type Value } from "../../agents/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { settle, tempDir, testRuntime } from "./helpers.ts";
import { directoryWriteFault } from "./runtime-db-fault.ts";

// A write of the runtime's directory index after the agent's commit that runtime.db refuses until the process ends
// (its retries within the run: directory-index-retry.test.ts): the agent's pending mark must outlive its leaving
// memory, so the next start wakes it and its start event puts the index back from the agent's own rows
// (docs/agents.md, "Fleet directory").

const t = tempDir();
after(() => t.remove());

class Approver extends Agent {
  approve(key: string, value: Value): void {
    this.env.directory.put("approval", key, value);
  }
}

test("a directory index write refused after commit is put back at the next start after a hibernation", async () => {
  const dataDir = path.join(t.dir, "refused");
  const fault = directoryWriteFault();
  fault.failing = true;
  try {
    const clock = new ManualClock();
    const rt = testRuntime(dataDir, Approver, 1, { clock, idleTimeoutMs: 1_000 });
    await rt.start();
    assert.deepEqual(await rt.call("a", "approve", ["k", 1]), { ok: true, value: null });
    await clock.advance(2_000);
    await settle();
    assert.equal(rt.stats().active, 0);
    assert.deepEqual(rt.directory.list("approval"), []);
    await rt.shutdown();
    fault.failing = false;
    const rt2 = testRuntime(dataDir, Approver, 1);
    try {
      await rt2.start();
      await settle();
      assert.deepEqual(rt2.directory.list("approval"), [{ agentId: "a", key: "k", value: 1 }]);
    } finally {
      await rt2.shutdown();
    }
    // Put back: the mark goes as the agent leaves memory, and the start after that wakes no one.
    let woken = 0;
    const rt3 = testRuntime(dataDir, Approver, 1, { observer: { onWake: () => woken++ } });
    await rt3.start();
    await settle();
    await rt3.shutdown();
    assert.equal(woken, 0);
  } finally {
    fault.restore();
  }
});
