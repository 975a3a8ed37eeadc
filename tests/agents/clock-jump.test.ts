import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type Clock } from "../../agents/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { tempDir, testRuntime } from "./helpers.ts";

const ticks: string[] = [];

class Alarmed extends Agent {
  static override callable = ["inADay"];
  inADay(): string {
    return this.schedule(86_400, "tick", "due").id;
  }
  tick(payload: string): void {
    ticks.push(payload);
  }
}

/**
 * A wall clock that can jump (an NTP correction on a gateway with no real-time clock) while timers keep running on
 * the monotonic manual clock underneath, as Node's timers do.
 */
class JumpingClock implements Clock {
  offsetMs = 0;
  constructor(readonly timers: ManualClock) {}
  now(): number {
    return this.timers.now() + this.offsetMs;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    return this.timers.setTimeout(fn, ms);
  }
  clearTimeout(handle: unknown): void {
    this.timers.clearTimeout(handle);
  }
}

describe("alarms and wall-clock jumps", () => {
  const t = tempDir();
  after(() => t.remove());

  test("an alarm whose time the wall clock jumped past fires within a minute, not when its old timer ends", async () => {
    const timers = new ManualClock();
    const clock = new JumpingClock(timers);
    const rt = testRuntime(path.join(t.dir, "jump"), Alarmed, 1, { clock });
    try {
      await rt.start();
      assert.equal((await rt.call("a", "inADay", [])).ok, true);
      await timers.advance(60_000);
      assert.deepEqual(ticks, [], "not due yet");
      clock.offsetMs = 86_400_000;
      await timers.advance(60_000);
      assert.deepEqual(ticks, ["due"]);
    } finally {
      await rt.shutdown();
    }
  });
});
