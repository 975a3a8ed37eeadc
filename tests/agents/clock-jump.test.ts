import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent } from "../../agents/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { tempDir, testRuntime } from "./helpers.ts";

const ticks: string[] = [];

class Alarmed extends Agent {
  static override callable = ["inADay", "atDate"];
  inADay(): string {
    return this.schedule(86_400, "tick", "due").id;
  }
  atDate(ms: number): string {
    return this.schedule(new Date(ms), "tick", "dated").id;
  }
  tick(payload: string): void {
    ticks.push(payload);
  }
}

describe("alarms and wall-clock jumps", () => {
  const t = tempDir();
  after(() => t.remove());

  test("an alarm whose time the wall clock jumped past fires within a minute, not when its old timer ends", async () => {
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "jump"), Alarmed, 1, { clock });
    try {
      await rt.start();
      assert.equal((await rt.call("a", "inADay", [])).ok, true);
      await clock.advance(60_000);
      assert.deepEqual(ticks, [], "not due yet");
      clock.stepWall(86_400_000);
      await clock.advance(60_000);
      assert.deepEqual(ticks, ["due"]);
    } finally {
      await rt.shutdown();
    }
  });

  test("an alarm set for a date fires at that date, the wall clock stepped back meanwhile", async () => {
    ticks.length = 0;
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "back"), Alarmed, 2, { clock });
    try {
      await rt.start();
      const date = clock.now() + 2 * 3_600_000;
      assert.equal((await rt.call("a", "atDate", [date])).ok, true);
      clock.stepWall(-3_600_000);
      await clock.advance(2 * 3_600_000);
      assert.deepEqual(ticks, [], "two hours later the wall clock reads an hour before the date");
      await clock.advance(3_600_000 - 1);
      assert.deepEqual(ticks, []);
      await clock.advance(1);
      assert.deepEqual(ticks, ["dated"]);
      assert.equal(clock.now(), date);
    } finally {
      await rt.shutdown();
    }
  });
});
