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

describe("ThrottledWarning on a clock stepped back", () => {
  test("logs again at once after the wall clock steps back, not only once it has caught up", () => {
    let nowMs = 1_000_000;
    const clock = { now: () => nowMs, setTimeout: () => undefined, clearTimeout: () => {} };
    const logger = new MemoryLogger();
    const warning = new ThrottledWarning(logger, clock, "limit reached", 1000);
    warning.note({ from: "a" });
    // An NTP correction of an hour back: the next warning must not wait an hour plus the interval.
    nowMs -= 3_600_000;
    warning.note({ from: "b" });
    assert.equal(logger.lines.length, 2);
    warning.note({ from: "c" });
    assert.equal(logger.lines.length, 2, "throttled again from the new time");
  });
});
