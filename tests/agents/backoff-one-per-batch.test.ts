/**
 * An alarm event and a queue flush that fail as a whole in the same batch are one fault seen once, not two failures in
 * a row: the agent's alarm backoff takes one step (1 s), not two (agents/alarm-index.ts, backOff).
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type RuntimeObserver } from "../../agents/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { settle, tempDir, testRuntime } from "./helpers.ts";

const ran: string[] = [];
/** Whether `tick` (the schedule) and `work` (the queue item) lose their whole event's transaction. */
let losing = false;
let releaseHold: () => void = () => {};

class Both extends Agent {
  override onStart(): void {
    this.sql`CREATE TABLE IF NOT EXISTS u (k INTEGER PRIMARY KEY)`;
    this.sql`INSERT OR IGNORE INTO u (k) VALUES (1)`;
  }
  arm(): void {
    this.schedule(1, "tick", "tick");
  }
  /** Queues an item, then holds the mailbox: its flush is asked for when this commits, behind what came meanwhile. */
  async queueAndHold(): Promise<void> {
    this.queue("work", "work");
    await new Promise<void>((resolve) => {
      releaseHold = resolve;
    });
  }
  tick(payload: string): void {
    this.lose();
    ran.push(payload);
  }
  work(payload: string): void {
    this.lose();
    ran.push(payload);
  }
  private lose(): void {
    if (losing) this.sql`INSERT OR ROLLBACK INTO u (k) VALUES (1)`;
  }
}

describe("an alarm event and a queue flush failing in one batch", () => {
  const t = tempDir();
  after(() => t.remove());

  test("count as one failure: the backoff's first step is 1 s, not 2 s", async () => {
    ran.length = 0;
    const clock = new ManualClock();
    const batches: string[][] = [];
    let current: string[] = [];
    const observer: RuntimeObserver = {
      onEvent: (info) => current.push(`${info.kind}:${info.status}`),
      onCommit: () => {
        batches.push(current);
        current = [];
      },
    };
    const rt = testRuntime(path.join(t.dir, "one"), Both, 1, { clock, observer });
    try {
      await rt.start();
      assert.equal((await rt.call("b", "arm", [])).ok, true);
      const hold = rt.call("b", "queueAndHold", []);
      await settle();
      losing = true;
      // The alarm falls due while the call holds the mailbox; the call's commit asks for the flush behind it.
      await clock.advance(1_000);
      current = [];
      releaseHold();
      assert.equal((await hold).ok, true);
      await settle();
      assert.deepEqual(current, ["alarm:failed", "queue:failed"], "both failed as a whole, in one batch");
      assert.deepEqual(ran, []);
      losing = false;
      await clock.advance(999);
      assert.deepEqual(ran, [], "still backing off");
      await clock.advance(1);
      assert.deepEqual(ran.sort(), ["tick", "work"], "both ran 1 s after the failure");
    } finally {
      losing = false;
      await rt.shutdown();
    }
  });
});
