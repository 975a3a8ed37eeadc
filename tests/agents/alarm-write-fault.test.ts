/**
 * The alarm index keeps each agent's next alarm in memory and mirrors it in runtime.db. When that write fails (a
 * storage fault of runtime.db), the alarm still fires from memory and the write is tried again later, with backoff,
 * until it lands (agents/alarm-index.ts). Before, the failed write left the index without the alarm: an alarm or queue
 * event that had failed as a whole was never tried again, and a sleeping agent's due work waited for another event
 * or a restart.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { ALARM_WRITE_RETRY_MAX_MS } from "../../agents/alarm-rows.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { settle, tempDir, testRuntime } from "./helpers.ts";
import { enqueueHeld, LosingAgent, loseNextEvents } from "./losing-events.ts";
import { alarmWriteFault } from "./runtime-db-fault.ts";

const ran: string[] = [];

class Worker extends LosingAgent {
  every(seconds: number): void {
    this.scheduleEvery(seconds, "work", "tick");
  }
  later(seconds: number, payload: string): string {
    return this.schedule(seconds, "work", payload).id;
  }
  cancel(id: string): void {
    this.cancelSchedule(id);
  }
  enqueue(payload: string): void {
    this.queue("work", payload);
  }
  queued(): number {
    return this.getQueues().length;
  }
  work(payload: string): void {
    this.failIfAsked(payload);
    ran.push(payload);
  }
}

describe("an alarm write that runtime.db refuses", () => {
  const t = tempDir();
  after(() => t.remove());

  test("a sleeping agent's alarm event that fails as a whole is still tried again after its backoff", async () => {
    ran.length = 0;
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "alarm"), Worker, 1, { clock, idleTimeoutMs: 10_000 });
    const fault = alarmWriteFault();
    try {
      await rt.start();
      assert.equal((await rt.call("w", "every", [60])).ok, true);
      await clock.advance(59_999);
      assert.equal(rt.stats().active, 0, "the agent sleeps");
      loseNextEvents(1);
      fault.failing = true;
      await clock.advance(1);
      assert.deepEqual(ran, [], "the alarm event lost its transaction, and its backoff's write failed");
      fault.failing = false;
      await clock.advance(1_000);
      assert.deepEqual(ran, ["tick"], "tried again a second later, with no other event");
      await clock.advance(60_000);
      assert.deepEqual(ran, ["tick", "tick"], "and the schedule goes on at its interval");
    } finally {
      loseNextEvents(0);
      fault.restore();
      await rt.shutdown();
    }
  });

  test("a queue flush that fails as a whole is still tried again after its backoff", async () => {
    ran.length = 0;
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "flush"), Worker, 2, { clock });
    const fault = alarmWriteFault();
    try {
      await rt.start();
      assert.equal((await rt.call("w", "queued", [])).ok, true, "awake first");
      loseNextEvents(1);
      fault.failing = true;
      assert.equal((await rt.call("w", "enqueue", ["job"])).ok, true);
      await settle();
      assert.deepEqual(ran, [], "the flush lost its transaction, and its backoff's write failed");
      fault.failing = false;
      await clock.advance(1_000);
      assert.deepEqual(ran, ["job"], "the alarm the backoff set ran it a second later");
      assert.deepEqual(await rt.call("w", "queued", []), { ok: true, value: 0 });
    } finally {
      loseNextEvents(0);
      fault.restore();
      await rt.shutdown();
    }
  });

  test("a lasting fault is retried with backoff, not in a loop, and the row is written once the fault ends", async () => {
    ran.length = 0;
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "lasting"), Worker, 3, { clock });
    const fault = alarmWriteFault();
    try {
      await rt.start();
      const soon = await rt.call("w", "later", [60, "soon"]);
      assert.equal((await rt.call("w", "later", [3_600, "late"])).ok, true);
      assert.equal(soon.ok, true);
      const lateAt = clock.now() + 3_600_000;
      fault.failing = true;
      fault.written.length = 0;
      // The agent's next alarm moves to the later schedule: the index's write of it fails.
      assert.equal((await rt.call("w", "cancel", [soon.ok ? soon.value : ""])).ok, true);
      const before = fault.attempts;
      await clock.advance(600_000);
      const retries = fault.attempts - before;
      assert.ok(retries >= 5, `the write was tried again (${retries} times)`);
      assert.ok(retries <= 20, `with backoff up to ${ALARM_WRITE_RETRY_MAX_MS} ms, not in a loop (${retries} times)`);
      fault.failing = false;
      await clock.advance(ALARM_WRITE_RETRY_MAX_MS);
      assert.deepEqual(fault.written, [{ agentId: "w", at: lateAt }], "the row is written once runtime.db takes it");
      await clock.advance(ALARM_WRITE_RETRY_MAX_MS);
      assert.equal(fault.written.length, 1, "and then left alone");
      assert.deepEqual(ran, []);
    } finally {
      fault.restore();
      await rt.shutdown();
    }
  });

  test("a row still refused when the retries stop gets one last try at shutdown", async () => {
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "shutdown"), Worker, 5, { clock });
    const fault = alarmWriteFault();
    try {
      await rt.start();
      const soon = await rt.call("w", "later", [60, "soon"]);
      assert.equal((await rt.call("w", "later", [3_600, "late"])).ok, true);
      fault.failing = true;
      fault.written.length = 0;
      assert.equal((await rt.call("w", "cancel", [soon.ok ? soon.value : ""])).ok, true);
      fault.failing = false;
      await rt.shutdown();
      assert.deepEqual(fault.written, [{ agentId: "w", at: clock.now() + 3_600_000 }], "written before the close");
    } finally {
      fault.restore();
      await rt.shutdown();
    }
  });

  test("a new schedule whose alarm cannot be written ahead fails, and the early alarm it left wakes nothing", async () => {
    ran.length = 0;
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "write-ahead"), Worker, 6, { clock });
    const fault = alarmWriteFault();
    try {
      await rt.start();
      fault.failing = true;
      const refused = await rt.call("w", "later", [1, "refused"]);
      assert.equal(refused.ok, false, "the schedule call failed: nothing would wake the agent for it after a crash");
      fault.failing = false;
      await clock.advance(2_000);
      assert.deepEqual(ran, [], "the rolled-back schedule never runs");
      assert.equal((await rt.call("w", "later", [1, "kept"])).ok, true);
      await clock.advance(1_000);
      assert.deepEqual(ran, ["kept"], "and the next one fires on time");
    } finally {
      fault.restore();
      await rt.shutdown();
    }
  });

  test("a wall clock stepping back behind a backoff while the write fails still runs the held work, in the timer", async () => {
    ran.length = 0;
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "step-back"), Worker, 4, { clock });
    const fault = alarmWriteFault();
    try {
      await rt.start();
      await enqueueHeld(rt, "w", "A", ran);
      clock.stepWall(-3_600_000);
      fault.failing = true;
      await clock.advance(60_000);
      assert.deepEqual(ran, ["A"], "the backoff ended with the step: A ran, though its alarm's write failed");
    } finally {
      loseNextEvents(0);
      fault.restore();
      await rt.shutdown();
    }
  });
});
