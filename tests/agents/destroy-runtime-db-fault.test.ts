/**
 * destroyAgent while runtime.db refuses to delete the agent's rows (alarm, pending mark, directory entries): the
 * destroy still removes the agent (its database files, its connections, its alarm in memory) and resolves; the rows
 * are deleted again later with the alarm writes' backoff, and once more at shutdown, so a restart does not wake the
 * destroyed agent and make it again. Before, the refusal threw out of destroyAgent after the agent had left memory
 * but before its files went, and its rows stayed for the next start.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { AlarmIndex } from "../../agents/alarm-index.ts";
import { ALARM_WRITE_RETRY_MAX_MS } from "../../agents/alarm-rows.ts";
import { Agent } from "../../agents/index.ts";
import { RuntimeDb } from "../../agents/runtime-db.ts";
import { capturingRawLogger } from "../support/capturing-logger.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { tempDir, testRuntime } from "./helpers.ts";
import { deleteAgentFault } from "./runtime-db-fault.ts";

const ran: string[] = [];

class Keeper extends Agent {
  plan(seconds: number): void {
    this.schedule(seconds, "tick", "tick");
  }
  tick(payload: string): void {
    ran.push(payload);
  }
}

function agentFile(dataDir: string, id: string): string {
  return path.join(dataDir, "agents", `${id}.db`);
}

/** Starts a runtime on `dataDir` and lets a minute pass: what a destroyed agent left would wake it and make it again. */
async function restartFindsNothing(dataDir: string, seed: number): Promise<void> {
  const clock = new ManualClock();
  const rt = testRuntime(dataDir, Keeper, seed, { clock });
  try {
    await rt.start();
    await clock.advance(120_000);
    assert.deepEqual(ran, [], "no schedule of the destroyed agent fired");
    assert.equal(fs.existsSync(agentFile(dataDir, "k")), false, "the destroyed agent was not made again");
  } finally {
    await rt.shutdown();
  }
}

describe("destroyAgent while runtime.db refuses to delete the agent's rows", () => {
  const t = tempDir();
  after(() => t.remove());

  for (const inMemory of [true, false]) {
    test(`removes the agent ${inMemory ? "in memory" : "asleep"} and resolves; its rows go at the retry`, async () => {
      ran.length = 0;
      const clock = new ManualClock();
      const dataDir = path.join(t.dir, inMemory ? "awake" : "asleep");
      const rt = testRuntime(dataDir, Keeper, 1, { clock, idleTimeoutMs: 1_000 });
      const fault = deleteAgentFault();
      try {
        await rt.start();
        assert.equal((await rt.call("k", "plan", [60])).ok, true);
        if (!inMemory) await clock.advance(2_000);
        assert.equal(rt.stats().active, inMemory ? 1 : 0);
        fault.failing = true;
        assert.equal(await rt.destroyAgent("k"), true);
        assert.equal(fs.existsSync(agentFile(dataDir, "k")), false, "its database is gone");
        fault.failing = false;
        await clock.advance(1_000);
        assert.deepEqual(fault.deleted, ["k"], "its rows were deleted at the retry");
        await clock.advance(60_000);
        assert.deepEqual(ran, []);
      } finally {
        fault.restore();
        await rt.shutdown();
      }
      await restartFindsNothing(dataDir, 2);
    });
  }

  test("rows still refused when the retries stop are deleted at shutdown", async () => {
    ran.length = 0;
    const clock = new ManualClock();
    const dataDir = path.join(t.dir, "shutdown");
    const rt = testRuntime(dataDir, Keeper, 3, { clock });
    const fault = deleteAgentFault();
    try {
      await rt.start();
      assert.equal((await rt.call("k", "plan", [60])).ok, true);
      fault.failing = true;
      assert.equal(await rt.destroyAgent("k"), true);
      fault.failing = false;
    } finally {
      fault.restore();
      await rt.shutdown();
    }
    await restartFindsNothing(dataDir, 4);
  });

  test("an agent made again under the same id before the retry keeps the rows it writes", async () => {
    ran.length = 0;
    const clock = new ManualClock();
    const dataDir = path.join(t.dir, "again");
    const rt = testRuntime(dataDir, Keeper, 5, { clock });
    const fault = deleteAgentFault();
    try {
      await rt.start();
      assert.equal((await rt.call("k", "plan", [60])).ok, true);
      fault.failing = true;
      assert.equal(await rt.destroyAgent("k"), true);
      fault.failing = false;
      // The old rows go before the new agent's first row is written; the retry then has nothing left to delete.
      assert.equal((await rt.call("k", "plan", [30])).ok, true);
      await clock.advance(5_000);
      assert.deepEqual(fault.deleted, ["k"], "deleted once, before the new row");
    } finally {
      fault.restore();
      await rt.shutdown();
    }
    const clock2 = new ManualClock(clock.now());
    const rt2 = testRuntime(dataDir, Keeper, 6, { clock: clock2 });
    try {
      await rt2.start();
      await clock2.advance(25_000);
      assert.deepEqual(ran, ["tick"], "the new agent's schedule fires after a restart: its row was kept");
    } finally {
      await rt2.shutdown();
    }
  });

  test("no retry timer is left once the only row waiting for one belongs to an agent that was destroyed", () => {
    const dir = path.join(t.dir, "index");
    fs.mkdirSync(dir, { recursive: true });
    const db = new RuntimeDb(path.join(dir, "runtime.db"), "NORMAL");
    const clock = new ManualClock();
    const { logger, lines } = capturingRawLogger("info");
    const index = new AlarmIndex(db, clock, () => {}, logger);
    const setAlarm = db.setAlarm;
    try {
      index.start();
      db.setAlarm = () => {
        throw new Error("disk I/O error");
      };
      index.set("a", clock.now() + 10_000);
      assert.ok(clock.pending > 0, "the alarm's timer and the write's retry");
      db.setAlarm = setAlarm;
      index.forget("a");
      assert.equal(clock.pending, 0, "no timer left for the agent that is gone");
      clock.advanceSync(ALARM_WRITE_RETRY_MAX_MS);
      assert.equal(lines.filter((l) => l.includes("takes alarm writes again")).length, 0, "and nothing claims a retry");
    } finally {
      index.stop();
      db.close();
    }
  });
});
