import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MANUAL_CLOCK_DEFAULT_START_MS, ManualClock } from "./manual-clock.ts";

/** Sets timers that log their name and the time they saw when they ran. */
function recorder(clock: ManualClock): { log: Array<[string, number]>; at(name: string, ms: number): unknown } {
  const log: Array<[string, number]> = [];
  return { log, at: (name, ms) => clock.setTimeout(() => log.push([name, clock.now()]), ms) };
}

for (const [mode, step] of [
  ["advanceSync", (clock: ManualClock, ms: number) => clock.advanceSync(ms)],
  ["advance", (clock: ManualClock, ms: number) => clock.advance(ms)],
] as const) {
  describe(`the manual clock's ${mode}`, () => {
    test("fires due timers in time order, each seeing its own due time, and ends at the start plus the step", async () => {
      const clock = new ManualClock(1000);
      const r = recorder(clock);
      r.at("c", 30);
      r.at("a", 10);
      r.at("b", 20);
      r.at("late", 31);
      await step(clock, 30);
      assert.deepEqual(r.log, [
        ["a", 1010],
        ["b", 1020],
        ["c", 1030],
      ]);
      assert.equal(clock.now(), 1030);
      assert.equal(clock.pending, 1);
      await step(clock, 1);
      assert.deepEqual(r.log.at(-1), ["late", 1031]);
      assert.equal(clock.pending, 0);
    });

    test("timers due at the same time fire in the order they were set", async () => {
      const clock = new ManualClock(0);
      const r = recorder(clock);
      for (const name of ["x", "y", "z"]) r.at(name, 5);
      await step(clock, 5);
      assert.deepEqual(
        r.log.map(([name]) => name),
        ["x", "y", "z"],
      );
    });

    test("a timer set by a timer fires in the same step when it falls due within it, and not when it falls after", async () => {
      const clock = new ManualClock(0);
      const log: Array<[string, number]> = [];
      clock.setTimeout(() => {
        log.push(["outer", clock.now()]);
        clock.setTimeout(() => log.push(["inner", clock.now()]), 15);
        clock.setTimeout(() => log.push(["beyond", clock.now()]), 100);
      }, 10);
      clock.setTimeout(() => log.push(["between", clock.now()]), 20);
      await step(clock, 50);
      assert.deepEqual(log, [
        ["outer", 10],
        ["between", 20],
        ["inner", 25],
      ]);
      assert.equal(clock.pending, 1);
      assert.equal(clock.now(), 50);
    });

    test("a cleared timer never fires, and clearing an unknown or fired handle is harmless", async () => {
      const clock = new ManualClock(0);
      const r = recorder(clock);
      const cleared = r.at("cleared", 5);
      const fired = r.at("fired", 1);
      clock.clearTimeout(cleared);
      await step(clock, 10);
      clock.clearTimeout(fired);
      clock.clearTimeout(undefined);
      clock.clearTimeout("nope");
      assert.deepEqual(r.log, [["fired", 1]]);
      assert.equal(clock.pending, 0);
    });

    test("a negative or NaN delay is due at once and fires on a step of zero", async () => {
      const clock = new ManualClock(100);
      const r = recorder(clock);
      r.at("negative", -5);
      r.at("nan", Number.NaN);
      await step(clock, 0);
      assert.deepEqual(r.log, [
        ["negative", 100],
        ["nan", 100],
      ]);
    });

    test("a step backwards or of no finite size is refused and leaves time alone", async () => {
      const clock = new ManualClock(100);
      for (const ms of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
        await assert.rejects(async () => step(clock, ms), RangeError);
      }
      assert.equal(clock.now(), 100);
    });

    test("timers that keep setting zero-delay timers fail the step instead of hanging it", async () => {
      const clock = new ManualClock(0);
      const again = (): void => {
        clock.setTimeout(again, 0);
      };
      clock.setTimeout(again, 0);
      await assert.rejects(async () => step(clock, 1), /timers keep setting timers/);
    });
  });
}

describe("the manual clock", () => {
  test("starts at the given time, or at the documented default", () => {
    assert.equal(new ManualClock(42).now(), 42);
    assert.equal(new ManualClock().now(), MANUAL_CLOCK_DEFAULT_START_MS);
    assert.equal(MANUAL_CLOCK_DEFAULT_START_MS, Date.UTC(2026, 0, 1));
    assert.throws(() => new ManualClock(Number.NaN), /startMs/);
  });

  test("moves its monotonic reading with the wall clock, from 0", async () => {
    const clock = new ManualClock(5000);
    assert.equal(clock.monotonicNow(), 0);
    clock.advanceSync(10);
    await clock.advance(5);
    assert.deepEqual([clock.now(), clock.monotonicNow()], [5015, 15]);
  });

  test("stepWall moves the wall clock alone, either way, and timers keep to the monotonic clock", async () => {
    const clock = new ManualClock(1_000_000);
    const r = recorder(clock);
    r.at("due", 100);
    clock.stepWall(-3_600_000);
    assert.deepEqual([clock.now(), clock.monotonicNow(), clock.pending], [1_000_000 - 3_600_000, 0, 1]);
    clock.stepWall(365 * 86_400_000);
    assert.equal(clock.pending, 1, "a step forward fires nothing");
    await clock.advance(100);
    assert.deepEqual(r.log, [["due", 1_000_100 - 3_600_000 + 365 * 86_400_000]]);
    assert.equal(clock.monotonicNow(), 100);
    assert.throws(() => clock.stepWall(Number.NaN), RangeError);
  });

  test("advance lets a promise started by one timer settle before the next timer fires", async () => {
    const clock = new ManualClock(0);
    const log: string[] = [];
    clock.setTimeout(() => {
      void Promise.resolve()
        .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
        .then(() => log.push("first's async work done"));
    }, 10);
    clock.setTimeout(() => log.push("second fired"), 20);
    await clock.advance(20);
    assert.deepEqual(log, ["first's async work done", "second fired"]);
  });

  test("advanceSync fires everything before returning, with no promise callback in between", () => {
    const clock = new ManualClock(0);
    const log: string[] = [];
    clock.setTimeout(() => {
      void Promise.resolve().then(() => log.push("microtask"));
    }, 10);
    clock.setTimeout(() => log.push("second fired"), 20);
    clock.advanceSync(20);
    assert.deepEqual(log, ["second fired"]);
  });
});
