/**
 * The queue stays FIFO by sequence for first attempts while an alarm backoff holds some of its items: an item queued
 * after the failure waits behind the held ones (a device's "command A then B" never runs B first), while a retry of a
 * failing item keeps its own backoff time.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { ManualClock } from "../support/manual-clock.ts";
import { settle, tempDir, testRuntime } from "./helpers.ts";
import { enqueueHeld, LosingAgent, loseNextEvents } from "./losing-events.ts";

const ran: string[] = [];

class Commands extends LosingAgent {
  enqueue(payload: string): void {
    this.queue("work", payload, { retry: { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 100 } });
  }
  queued(): string[] {
    return this.getQueues().map((item) => String(item.payload));
  }
  work(payload: string): void {
    this.failIfAsked(payload);
    ran.push(payload);
  }
}

/** Counts the agent's alarm events, so a hold that makes the alarm fire again and again shows. */
function alarmCounter(): { count: number; observer: { onEvent(info: { kind: string }): void } } {
  const counter = {
    count: 0,
    observer: {
      onEvent(info: { kind: string }): void {
        if (info.kind === "alarm") counter.count++;
      },
    },
  };
  return counter;
}

describe("the queue while an alarm backoff holds some of its items", () => {
  const t = tempDir();
  after(() => t.remove());

  test("an item queued after the failure waits behind the held item and runs after it, in sequence order", async () => {
    ran.length = 0;
    const clock = new ManualClock();
    const alarms = alarmCounter();
    const rt = testRuntime(path.join(t.dir, "fifo"), Commands, 1, { clock, observer: alarms.observer });
    try {
      await rt.start();
      await enqueueHeld(rt, "d", "A", ran);
      await clock.advance(1);
      assert.equal((await rt.call("d", "enqueue", ["B"])).ok, true);
      await settle();
      assert.deepEqual(ran, [], "B, queued after A, does not run before it");
      await clock.advance(500);
      assert.deepEqual(ran, [], "nor at any time during the hold");
      assert.equal(alarms.count, 0, "and the agent's alarm does not fire for B meanwhile");
      await clock.advance(499);
      assert.deepEqual(ran, ["A", "B"], "at the backoff's end both run, A first");
      assert.deepEqual(await rt.call("d", "queued", []), { ok: true, value: [] });
    } finally {
      loseNextEvents(0);
      await rt.shutdown();
    }
  });

  test("a restart during the hold ends it: the held item and the one behind it run at the start, in order", async () => {
    ran.length = 0;
    const dataDir = path.join(t.dir, "restart");
    const clock = new ManualClock();
    const first = testRuntime(dataDir, Commands, 3, { clock });
    try {
      await first.start();
      await enqueueHeld(first, "d", "A", ran);
      await clock.advance(1);
      assert.equal((await first.call("d", "enqueue", ["B"])).ok, true);
      await settle();
      assert.deepEqual(ran, [], "both wait for the backoff");
    } finally {
      loseNextEvents(0);
      await first.shutdown();
    }
    const second = testRuntime(dataDir, Commands, 4, { clock });
    try {
      await second.start();
      await settle();
      assert.deepEqual(ran, ["A", "B"], "the backoff was in memory: the pending agent's queue ran at the start");
    } finally {
      await second.shutdown();
    }
  });

  test("a wall clock that steps back behind the failure ends the hold instead of stalling the queue for the step", async () => {
    ran.length = 0;
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "step-back"), Commands, 5, { clock });
    try {
      await rt.start();
      await enqueueHeld(rt, "d", "A", ran);
      clock.stepWall(-3_600_000);
      await clock.advance(1);
      assert.equal((await rt.call("d", "enqueue", ["B"])).ok, true);
      await settle();
      await clock.advance(1_000);
      assert.deepEqual(ran, ["A", "B"], "both ran, in order, not an hour later");
    } finally {
      loseNextEvents(0);
      await rt.shutdown();
    }
  });

  test("a wall clock that steps back behind the failure runs the held item within a minute, with no other event", async () => {
    ran.length = 0;
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "step-back-idle"), Commands, 6, { clock });
    try {
      await rt.start();
      await enqueueHeld(rt, "d", "A", ran);
      clock.stepWall(-3_600_000);
      await clock.advance(60_000);
      assert.deepEqual(ran, ["A"], "the backoff ended with the step: A ran, not an hour later");
      assert.deepEqual(await rt.call("d", "queued", []), { ok: true, value: [] });
    } finally {
      loseNextEvents(0);
      await rt.shutdown();
    }
  });
});
