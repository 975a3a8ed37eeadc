import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ThrottledWarningPerKey } from "../../broker/throttled-warning-per-key.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { MemoryLogger } from "./helpers.ts";

describe("ThrottledWarningPerKey", () => {
  test("writes at most one line per interval for each key, counting that key's occurrences since its last line", () => {
    const clock = new ManualClock();
    const logger = new MemoryLogger();
    const warning = new ThrottledWarningPerKey(logger, clock, "refused", { intervalMs: 1000 });
    warning.note("10.0.0.1", { peer: "10.0.0.1" });
    warning.note("10.0.0.1", { peer: "10.0.0.1" });
    // Another key is logged at once, however busy the first one is.
    warning.note("10.0.0.2", { peer: "10.0.0.2" });
    clock.advanceSync(999);
    warning.note("10.0.0.1", { peer: "10.0.0.1" });
    assert.deepEqual(
      logger.lines.map((l) => l.obj),
      [
        { peer: "10.0.0.1", count: 1 },
        { peer: "10.0.0.2", count: 1 },
      ],
    );
    clock.advanceSync(1);
    warning.note("10.0.0.1", { peer: "10.0.0.1" });
    assert.deepEqual(logger.lines.at(-1)?.obj, { peer: "10.0.0.1", count: 3 });
    assert.equal(logger.lines.length, 3);
  });

  test("holds at most maxKeys keys: further keys share one throttled line until older keys' intervals pass", () => {
    const clock = new ManualClock();
    const logger = new MemoryLogger();
    const warning = new ThrottledWarningPerKey(logger, clock, "refused", { intervalMs: 1000, maxKeys: 2 });
    for (const key of ["a", "b", "c", "d"]) warning.note(key, { key });
    assert.deepEqual(
      logger.lines.map((l) => [l.msg, l.obj.key]),
      [
        ["refused", "a"],
        ["refused", "b"],
        ["refused (from too many addresses to log each)", "c"],
      ],
    );
    clock.advanceSync(1000);
    warning.note("e", { key: "e" });
    assert.deepEqual(logger.lines.at(-1)?.obj, { key: "e", count: 1 }, "a and b were forgotten, e has its own line");
  });

  test("writes its lines at the level asked for, the shared line past maxKeys included", () => {
    const clock = new ManualClock();
    const logger = new MemoryLogger();
    const line = new ThrottledWarningPerKey(logger, clock, "ended", { intervalMs: 1000, maxKeys: 1, level: "info" });
    for (const key of ["a", "a", "b"]) line.note(key, { key });
    assert.deepEqual(
      logger.lines.map((l) => [l.level, l.msg]),
      [
        ["info", "ended"],
        ["info", "ended (from too many addresses to log each)"],
      ],
    );
  });
});

describe("ThrottledWarningPerKey across a wall clock step", () => {
  for (const stepMs of [-3_600_000, 365 * 86_400_000]) {
    test(`keeps each key's interval when the wall clock steps by ${stepMs} ms`, () => {
      const clock = new ManualClock();
      const logger = new MemoryLogger();
      const warning = new ThrottledWarningPerKey(logger, clock, "cut", { intervalMs: 1000 });
      warning.note("192.0.2.1", {});
      clock.stepWall(stepMs);
      warning.note("192.0.2.1", {});
      assert.equal(logger.lines.length, 1, "still within the key's interval");
      clock.advanceSync(1000);
      warning.note("192.0.2.1", {});
      assert.equal(logger.lines.length, 2);
    });
  }
});
