/**
 * A schedule commits only with a runtime.db row that wakes its agent by its time: the write-ahead of the alarm index
 * (agents/alarm-index.ts, lowerTo). A kill -9 at any moment then still fires every schedule at the next start, on
 * time or early, never late. Each test takes a crash snapshot (a copy of the data directory as the disk holds it) and
 * starts a second runtime on it.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent } from "../../agents/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { settle, tempDir, testRuntime } from "./helpers.ts";
import { alarmWriteFault, crashSnapshot } from "./runtime-db-fault.ts";

const ran: string[] = [];
/** While set, `work("first")` schedules a run an hour later and then waits for `release` inside its alarm event. */
let holding = false;
let release: () => void = () => {};

class Planner extends Agent {
  plan(seconds: number, payload: string): void {
    this.schedule(seconds, "work", payload);
  }
  /** Schedules, and catches a refusal: the event goes on and commits, as a handler that handles errors does. */
  tryPlan(seconds: number, payload: string): string {
    try {
      this.schedule(seconds, "work", payload);
      return "scheduled";
    } catch {
      return "refused";
    }
  }
  count(): number {
    return this.getSchedules().length;
  }
  async work(payload: string): Promise<void> {
    ran.push(payload);
    if (payload === "first" && holding) {
      this.schedule(3_600, "work", "an hour later");
      await new Promise<void>((resolve) => {
        release = resolve;
      });
    }
  }
}

describe("a schedule's alarm row is written ahead of its commit", () => {
  const t = tempDir();
  after(() => t.remove());

  test("a schedule whose row runtime.db refuses does not commit, even when the caller catches the refusal", async () => {
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "caught"), Planner, 1, { clock });
    const fault = alarmWriteFault();
    try {
      await rt.start();
      fault.failing = true;
      assert.deepEqual(await rt.call("p", "tryPlan", [10, "a"]), { ok: true, value: "refused" });
      assert.deepEqual(await rt.call("p", "count", []), { ok: true, value: 0 }, "no schedule without its row");
    } finally {
      fault.restore();
      await rt.shutdown();
    }
  });

  test("while a refused row waits for its retry, a later schedule is refused too, not committed without a row", async () => {
    ran.length = 0;
    const clock = new ManualClock();
    const dataDir = path.join(t.dir, "behind");
    const rt = testRuntime(dataDir, Planner, 2, { clock });
    const fault = alarmWriteFault();
    try {
      await rt.start();
      fault.failing = true;
      assert.deepEqual(await rt.call("p", "tryPlan", [10, "a"]), { ok: true, value: "refused" });
      // The index holds the refused alarm (10 s) in memory, ahead of this one: the row is still not written.
      assert.deepEqual(await rt.call("p", "tryPlan", [20, "b"]), { ok: true, value: "refused" });
      assert.deepEqual(await rt.call("p", "count", []), { ok: true, value: 0 });
      fault.failing = false;
      assert.deepEqual(await rt.call("p", "tryPlan", [20, "c"]), { ok: true, value: "scheduled" });
    } finally {
      fault.restore();
    }
    const copy = crashSnapshot(dataDir, path.join(t.dir, "behind-crash"));
    await rt.shutdown();
    const clock2 = new ManualClock(clock.now());
    const rt2 = testRuntime(copy, Planner, 3, { clock: clock2 });
    try {
      await rt2.start();
      await clock2.advance(20_000);
      assert.deepEqual(ran, ["c"], "the committed schedule fired after the crash, on time");
    } finally {
      await rt2.shutdown();
    }
  });

  test("a schedule set during an alarm event leaves the fired alarm's row, so a crash before its commit re-fires at once", async () => {
    ran.length = 0;
    const clock = new ManualClock();
    const dataDir = path.join(t.dir, "fired");
    const rt = testRuntime(dataDir, Planner, 4, { clock });
    let copy: string;
    try {
      await rt.start();
      assert.equal((await rt.call("p", "plan", [1, "first"])).ok, true);
      holding = true;
      await clock.advance(1_000);
      assert.deepEqual(ran, ["first"], "the alarm event runs, and waits after scheduling a run an hour later");
      copy = crashSnapshot(dataDir, path.join(t.dir, "fired-crash"));
    } finally {
      holding = false;
      release();
      await settle();
      await rt.shutdown();
    }
    ran.length = 0;
    const clock2 = new ManualClock(clock.now());
    const rt2 = testRuntime(copy, Planner, 5, { clock: clock2 });
    try {
      await rt2.start();
      await clock2.advance(0);
      assert.deepEqual(ran, ["first"], "the schedule whose run never committed fires at the start, not an hour later");
    } finally {
      await rt2.shutdown();
    }
  });
});
