import assert from "node:assert/strict";
import path from "node:path";
import { after, afterEach, beforeEach, describe, test } from "node:test";
import { DIRECTORY_RETRY_FIRST_MS, DIRECTORY_RETRY_MAX_MS } from "../../agents/directory-index.ts";
import { Agent, type Value } from "../../agents/index.ts";
import { capturingLogger } from "../support/capturing-logger.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { tempDir, testRuntime } from "./helpers.ts";
import { directoryWriteFault } from "./runtime-db-fault.ts";

// A write of the fleet directory's index that runtime.db refuses after the agent's commit is tried again within the
// run, with backoff on the runtime's clock, until it lands (docs/agents.md, "Fleet directory"): before, the index
// (which the operator API reads approvals from) stayed stale until the agent's next wake or the next start.

class Approver extends Agent {
  approve(key: string, value: Value): void {
    this.env.directory.put("approval", key, value);
  }
  withdraw(key: string): void {
    this.env.directory.put("approval", key, null);
  }
}

const DIRECTORY_LINE = /directory index/;

describe("a directory index write that runtime.db refuses", () => {
  const t = tempDir();
  after(() => t.remove());
  let fault: ReturnType<typeof directoryWriteFault>;
  beforeEach(() => {
    fault = directoryWriteFault();
  });
  afterEach(() => fault.restore());

  test("is written again within the run once runtime.db takes writes, the agent asleep or not", async () => {
    const clock = new ManualClock();
    const log = capturingLogger<{ level: number; msg: string }>("info");
    const rt = testRuntime(path.join(t.dir, "retry"), Approver, 1, {
      clock,
      logger: log.logger,
      idleTimeoutMs: 60_000,
    });
    try {
      await rt.start();
      fault.failing = true;
      assert.deepEqual(await rt.call("a", "approve", ["k", 1]), { ok: true, value: null });
      assert.deepEqual(await rt.call("b", "approve", ["k", 2]), { ok: true, value: null });
      assert.deepEqual(rt.directory.list("approval"), []);
      await clock.advance(DIRECTORY_RETRY_FIRST_MS);
      assert.deepEqual(rt.directory.list("approval"), [], "refused again while the fault lasts");
      fault.failing = false;
      // Agent b leaves memory before the retry: its entry is written all the same.
      await clock.advance(60_000);
      assert.equal(rt.stats().active, 0);
      assert.deepEqual(rt.directory.list("approval"), [
        { agentId: "a", key: "k", value: 1 },
        { agentId: "b", key: "k", value: 2 },
      ]);
      const warned = log.lines.filter((l) => l.level === 40 && DIRECTORY_LINE.test(l.msg));
      assert.equal(warned.length, 1, "one warn line for the run of refusals, none per agent or retry");
      assert.equal(log.lines.filter((l) => l.level === 30 && DIRECTORY_LINE.test(l.msg)).length, 1);
    } finally {
      await rt.shutdown();
    }
  });

  test("a later change of the agent is not undone by the retry of an earlier refused one", async () => {
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "later"), Approver, 2, { clock });
    try {
      await rt.start();
      fault.failing = true;
      assert.equal((await rt.call("a", "approve", ["k", 1])).ok, true);
      assert.equal((await rt.call("a", "approve", ["j", 5])).ok, true);
      fault.failing = false;
      assert.equal((await rt.call("a", "approve", ["k", 2])).ok, true);
      assert.equal((await rt.call("a", "withdraw", ["j"])).ok, true);
      const now = [{ agentId: "a", key: "k", value: 2 }];
      assert.deepEqual(rt.directory.list("approval"), now, "the later write put the agent's entries back whole");
      await clock.advance(DIRECTORY_RETRY_MAX_MS);
      assert.deepEqual(rt.directory.list("approval"), now);
    } finally {
      await rt.shutdown();
    }
  });

  test("is tried again with backoff while the fault lasts, never in a loop", async () => {
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "backoff"), Approver, 3, { clock });
    try {
      await rt.start();
      fault.failing = true;
      assert.equal((await rt.call("a", "approve", ["k", 1])).ok, true);
      fault.attempts = 0;
      // 1 s, doubling up to the max: tries at 1, 3, 7, 15, 31, 63, 123 and 183 s.
      await clock.advance(200_000);
      assert.equal(fault.attempts, 8);
      fault.failing = false;
      await clock.advance(DIRECTORY_RETRY_MAX_MS);
      assert.deepEqual(rt.directory.list("approval"), [{ agentId: "a", key: "k", value: 1 }]);
      fault.attempts = 0;
      await clock.advance(10 * DIRECTORY_RETRY_MAX_MS);
      assert.equal(fault.attempts, 0, "nothing is tried once the entries landed");
    } finally {
      await rt.shutdown();
    }
  });

  test("of an agent destroyed since is not written again", async () => {
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "destroyed"), Approver, 4, { clock });
    try {
      await rt.start();
      fault.failing = true;
      assert.equal((await rt.call("a", "approve", ["k", 1])).ok, true);
      assert.equal(await rt.destroyAgent("a"), true);
      fault.failing = false;
      fault.attempts = 0;
      await clock.advance(DIRECTORY_RETRY_MAX_MS);
      assert.deepEqual(rt.directory.list("approval"), []);
      assert.equal(fault.attempts, 0);
    } finally {
      await rt.shutdown();
    }
  });
});
