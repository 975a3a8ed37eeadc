/**
 * A schedule at a time before 1970 is a time in the past like any other: it runs at once. The alarm index marks a
 * fired alarm with a sentinel time; a schedule at exactly that time (new Date(-1)) must not read as "unchanged".
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, test } from "node:test";
import { Agent } from "../../agents/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { settle, tempDir, testRuntime } from "./helpers.ts";

const ran: string[] = [];

class Chain extends Agent {
  plan(): void {
    this.schedule(10, "work", "first");
  }
  work(payload: string): void {
    ran.push(payload);
    // A date computed before the epoch (a bug in the caller's arithmetic, or an old timestamp): due now.
    if (payload === "first") this.schedule(new Date(-1), "work", "second");
  }
}

const t = tempDir();
after(() => t.remove());

test("a schedule at new Date(-1), set by the alarm event that fired, runs at once", async () => {
  const clock = new ManualClock();
  const rt = testRuntime(path.join(t.dir, "epoch"), Chain, 1, { clock });
  try {
    await rt.start();
    await rt.call("c", "plan", []);
    await clock.advance(10_000);
    await settle();
    // Due at once: any timer the index arms for it is at most this far off.
    await clock.advance(1);
    await settle();
    assert.deepEqual(ran, ["first", "second"]);
  } finally {
    await rt.shutdown();
  }
});
