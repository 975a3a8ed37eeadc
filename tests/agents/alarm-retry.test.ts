import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent } from "../../agents/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { settle, tempDir, testRuntime } from "./helpers.ts";

const ticks: string[] = [];
/** How many alarm runs still lose their transaction (SQLite rolls it back on its own). */
let losing = 0;

class Ticker extends Agent {
  static override callable = ["arm"];
  override onStart(): void {
    this.sql`CREATE TABLE IF NOT EXISTS u (k INTEGER PRIMARY KEY)`;
    this.sql`INSERT OR IGNORE INTO u (k) VALUES (1)`;
  }
  arm(): string {
    return this.scheduleEvery(60, "tick", "t").id;
  }
  tick(payload: string): void {
    if (losing > 0) {
      losing--;
      // The whole alarm event fails: the schedule's own retry bookkeeping cannot be written either.
      this.sql`INSERT OR ROLLBACK INTO u (k) VALUES (1)`;
    }
    ticks.push(payload);
  }
}

describe("an alarm whose event fails", () => {
  const t = tempDir();
  after(() => t.remove());

  test("is tried again with backoff instead of leaving the agent's schedules stopped", async () => {
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "retry"), Ticker, 1, { clock });
    try {
      await rt.start();
      assert.equal((await rt.call("a", "arm", [])).ok, true);
      losing = 2;
      await clock.advance(60_000);
      assert.deepEqual(ticks, [], "the first run lost its transaction");
      await clock.advance(1_000);
      assert.deepEqual(ticks, [], "the second, a second later, too");
      await clock.advance(2_000);
      assert.deepEqual(ticks, ["t"], "the third, two seconds after the second, ran");
      await clock.advance(60_000);
      assert.deepEqual(ticks, ["t", "t"], "and the schedule goes on at its interval");
    } finally {
      await rt.shutdown();
    }
  });
});

const worked: string[] = [];
/** How many queue flushes still lose their transaction. */
let losingFlushes = 0;

class Worker extends Agent {
  static override callable = ["enqueue"];
  override onStart(): void {
    this.sql`CREATE TABLE IF NOT EXISTS u (k INTEGER PRIMARY KEY)`;
    this.sql`INSERT OR IGNORE INTO u (k) VALUES (1)`;
  }
  enqueue(payload: string): void {
    this.queue("work", payload);
  }
  queued(): number {
    return this.getQueues().length;
  }
  /** Drops every queue item and leaves no schedule: the agent has no alarm left. */
  dropAll(): void {
    for (const item of this.getQueues()) this.dequeue(item.id);
    this.cancelSchedule(this.schedule(3_600, "work", "never").id);
  }
  work(payload: string): void {
    if (losingFlushes > 0) {
      losingFlushes--;
      // The whole queue event fails: the item's own retry bookkeeping cannot be written either.
      this.sql`INSERT OR ROLLBACK INTO u (k) VALUES (1)`;
    }
    worked.push(payload);
  }
}

describe("a queue flush whose event fails", () => {
  const t = tempDir();
  after(() => t.remove());

  test("comes back by itself with the alarm's backoff instead of stranding the items until a restart", async () => {
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "flush"), Worker, 2, { clock });
    try {
      await rt.start();
      // Awake first: the wake's own bookkeeping would set the alarm for an item queued in its batch.
      assert.equal((await rt.call("w", "queued", [])).ok, true);
      losingFlushes = 2;
      assert.equal((await rt.call("w", "enqueue", ["job"])).ok, true);
      await settle();
      assert.deepEqual(worked, [], "the flush after the enqueue lost its transaction");
      await clock.advance(999);
      assert.deepEqual(worked, [], "nothing runs it again at once");
      await clock.advance(1);
      assert.deepEqual(worked, [], "a second later it ran again and lost its transaction again");
      await clock.advance(2_000);
      assert.deepEqual(worked, ["job"], "two seconds after that it ran and committed");
      assert.deepEqual(await rt.call("w", "queued", []), { ok: true, value: 0 }, "nothing is left queued");
    } finally {
      losingFlushes = 0;
      await rt.shutdown();
    }
  });

  test("a failure after the agent's alarm went away starts a new run of backoffs, not the old one's next step", async () => {
    worked.length = 0;
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "streak"), Worker, 3, { clock });
    try {
      await rt.start();
      assert.equal((await rt.call("w", "queued", [])).ok, true);
      losingFlushes = 1;
      assert.equal((await rt.call("w", "enqueue", ["old"])).ok, true);
      await settle();
      // Nothing is due any more: the backoff has nothing left to hold back.
      assert.equal((await rt.call("w", "dropAll", [])).ok, true);
      await clock.advance(3_600_000);
      assert.deepEqual(worked, []);
      losingFlushes = 1;
      assert.equal((await rt.call("w", "enqueue", ["new"])).ok, true);
      await settle();
      assert.deepEqual(worked, [], "the flush lost its transaction");
      await clock.advance(1_000);
      assert.deepEqual(worked, ["new"], "tried again after the first step of the backoff (1 s), not the second");
    } finally {
      losingFlushes = 0;
      await rt.shutdown();
    }
  });
});

const planned: string[] = [];
/** Runs of the failing schedule, kept in memory so that the rolled-back ones count too. */
let failingRuns = 0;
/** How many runs of the failing schedule still lose their alarm event's transaction. */
let losingRuns = 0;

class Planner extends Agent {
  static override callable = ["arm", "soon", "queueFailing", "queuePlan"];
  override onStart(): void {
    this.sql`CREATE TABLE IF NOT EXISTS u (k INTEGER PRIMARY KEY)`;
    this.sql`INSERT OR IGNORE INTO u (k) VALUES (1)`;
  }
  arm(): void {
    this.schedule(60, "failing", "old");
  }
  soon(seconds: number): void {
    this.schedule(seconds, "plan", "new");
  }
  queueFailing(): void {
    this.queue("failing", "old");
  }
  queuePlan(): void {
    this.queue("plan", "queued");
  }
  failing(payload: string): void {
    failingRuns++;
    if (losingRuns > 0) {
      losingRuns--;
      this.sql`INSERT OR ROLLBACK INTO u (k) VALUES (1)`;
    }
    planned.push(payload);
  }
  plan(payload: string): void {
    planned.push(payload);
  }
}

describe("an agent in alarm backoff", () => {
  const t = tempDir();
  after(() => t.remove());

  test("a schedule it sets for before the backoff's end fires on time, while the failing schedule still waits", async () => {
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "earlier"), Planner, 4, { clock });
    try {
      await rt.start();
      assert.equal((await rt.call("p", "arm", [])).ok, true);
      losingRuns = 3;
      await clock.advance(60_000 + 1_000 + 2_000);
      assert.equal(failingRuns, 3, "three alarm events failed as a whole: the backoff is now 4 s");
      assert.equal((await rt.call("p", "soon", [1])).ok, true);
      await clock.advance(1_000);
      assert.deepEqual(planned, ["new"], "the new schedule fired on time, not at the backoff's end");
      assert.equal(failingRuns, 3, "the failing schedule was not run again before its backoff ended");
      losingRuns = 0;
      await clock.advance(2_999);
      assert.equal(failingRuns, 3, "still backing off");
      await clock.advance(1);
      assert.equal(failingRuns, 4, "tried again when its backoff ended");
      assert.deepEqual(planned, ["new", "old"]);
    } finally {
      losingRuns = 0;
      await rt.shutdown();
    }
  });

  test("a failing queue item still waits for the backoff's end, and so does an item queued after it, while a later schedule runs on time", async () => {
    planned.length = 0;
    failingRuns = 0;
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "queue"), Planner, 5, { clock });
    try {
      await rt.start();
      assert.equal((await rt.call("p", "soon", [3_600])).ok, true, "awake, with an alarm far off");
      losingRuns = 2;
      assert.equal((await rt.call("p", "queueFailing", [])).ok, true);
      await settle();
      await clock.advance(1_000);
      assert.equal(failingRuns, 2, "the flush and the alarm a second later failed as a whole: the backoff is now 2 s");
      losingRuns = 0;
      // A millisecond on: what is due by the failure's own millisecond counts as due when the event failed.
      await clock.advance(1);
      assert.equal((await rt.call("p", "queuePlan", [])).ok, true);
      await settle();
      assert.deepEqual(
        planned,
        [],
        "an item queued after the failure waits behind the held one (first attempts are FIFO)",
      );
      assert.equal((await rt.call("p", "soon", [1])).ok, true);
      await clock.advance(1_000);
      assert.deepEqual(planned, ["new"], "a schedule set after the failure fires on time");
      assert.equal(failingRuns, 2, "nothing ran the failing item before its backoff ended");
      await clock.advance(998);
      assert.equal(failingRuns, 2, "still backing off");
      await clock.advance(1);
      assert.deepEqual(planned, ["new", "old", "queued"], "tried again when its backoff ended, then the later item");
    } finally {
      losingRuns = 0;
      await rt.shutdown();
    }
  });
});
