import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent } from "../../agents/index.ts";
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
});
