import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ThrottledWarning } from "../../broker/throttled-warning.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { MemoryLogger } from "./helpers.ts";

describe("ThrottledWarning", () => {
  test("writes at most one line per interval, counting what happened since the last one", () => {
    const clock = new ManualClock();
    const logger = new MemoryLogger();
    const warning = new ThrottledWarning(logger, clock, "limit reached", 1000);
    warning.note({ from: "a" });
    warning.note({ from: "b" });
    clock.advanceSync(999);
    warning.note({ from: "c" });
    assert.deepEqual(
      logger.lines.map((l) => [l.msg, l.obj]),
      [["limit reached", { from: "a", count: 1 }]],
    );
    clock.advanceSync(1);
    warning.note({ from: "d" });
    assert.deepEqual(logger.lines.at(-1)?.obj, { from: "d", count: 3 });
    assert.equal(logger.lines.length, 2);
  });
});

describe("ThrottledWarning across a wall clock step", () => {
  for (const stepMs of [-3_600_000, 365 * 86_400_000]) {
    test(`keeps its interval when the wall clock steps by ${stepMs} ms`, () => {
      const clock = new ManualClock();
      const logger = new MemoryLogger();
      const warning = new ThrottledWarning(logger, clock, "limit reached", 1000);
      warning.note({ from: "a" });
      // An NTP correction: back, the warning must not wait an hour more; forward, it must not flood at once.
      clock.stepWall(stepMs);
      warning.note({ from: "b" });
      assert.equal(logger.lines.length, 1, "still within the interval");
      clock.advanceSync(1000);
      warning.note({ from: "c" });
      assert.deepEqual(logger.lines.at(-1)?.obj, { from: "c", count: 2 });
    });
  }
});
