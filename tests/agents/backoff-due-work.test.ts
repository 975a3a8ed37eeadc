/**
 * An alarm backoff holds only the work that was due when its event failed: work the agent already had then, due
 * before the backoff's end (a queue item's retry, a schedule), still runs at its own time. Setting the alarm to the
 * backoff's end must not hide it.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { ManualClock } from "../support/manual-clock.ts";
import { settle, tempDir, testRuntime } from "./helpers.ts";
import { LosingAgent, loseNextEvents, throwingOnce } from "./losing-events.ts";

const ran: string[] = [];

class Worker extends LosingAgent {
  enqueue(payload: string): void {
    this.queue("work", payload, { retry: { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 100 } });
  }
  plan(payload: string, seconds: number): void {
    this.schedule(seconds, "work", payload);
  }
  ping(): null {
    return null;
  }
  work(payload: string): void {
    this.failIfAsked(payload);
    ran.push(payload);
  }
}

describe("work due during an alarm backoff that the agent had before the failure", () => {
  const t = tempDir();
  after(() => t.remove());

  test("a queue item's retry runs at its own time while a failed flush's item is held", async () => {
    ran.length = 0;
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "retry"), Worker, 1, { clock });
    try {
      await rt.start();
      assert.equal((await rt.call("w", "ping", [])).ok, true, "awake first");
      throwingOnce.add("R");
      assert.equal((await rt.call("w", "enqueue", ["R"])).ok, true);
      await settle();
      assert.deepEqual(ran, [], "R failed; it is retried within 100 ms");
      loseNextEvents(1);
      assert.equal((await rt.call("w", "enqueue", ["A"])).ok, true);
      await settle();
      assert.deepEqual(ran, [], "A's flush lost its transaction: A is held for the backoff (1 s)");
      await clock.advance(100);
      assert.deepEqual(ran, ["R"], "R's retry ran at its own time, during the hold");
      await clock.advance(900);
      assert.deepEqual(ran, ["R", "A"], "A ran when the backoff ended");
    } finally {
      loseNextEvents(0);
      throwingOnce.clear();
      await rt.shutdown();
    }
  });

  test("a schedule due half a second after a failed alarm fires then, not at the backoff's end", async () => {
    ran.length = 0;
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "schedule"), Worker, 2, { clock });
    try {
      await rt.start();
      assert.equal((await rt.call("w", "plan", ["old", 60])).ok, true);
      assert.equal((await rt.call("w", "plan", ["later", 60.5])).ok, true);
      loseNextEvents(1);
      await clock.advance(60_000);
      assert.deepEqual(ran, [], "the alarm at 60 s lost its transaction: old is held for the backoff (1 s)");
      await clock.advance(500);
      assert.deepEqual(ran, ["later"], "the schedule due at 60.5 s fired on time");
      await clock.advance(500);
      assert.deepEqual(ran, ["later", "old"], "old ran when the backoff ended");
    } finally {
      loseNextEvents(0);
      await rt.shutdown();
    }
  });
});
