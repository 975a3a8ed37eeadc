import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createManualClock, TickScheduler } from "../../firmware-sim/index.ts";

describe("shared tick scheduler", () => {
  it("runs tasks in due order, ties in insertion order, on one armed timer", () => {
    const clock = createManualClock(1000);
    const scheduler = new TickScheduler(clock);
    const ran: string[] = [];
    scheduler.after(30, () => ran.push("c"));
    scheduler.after(10, () => ran.push("a"));
    scheduler.after(10, () => ran.push("b"));
    scheduler.after(50, () => ran.push("d"));
    assert.equal(clock.pendingTimers(), 1, "one clock timer whatever the number of tasks");
    clock.advance(30);
    assert.deepEqual(ran, ["a", "b", "c"]);
    clock.advance(100);
    assert.deepEqual(ran, ["a", "b", "c", "d"]);
    assert.equal(clock.pendingTimers(), 0);
  });

  it("skips cancelled tasks and keeps running after a task throws", () => {
    const clock = createManualClock(0);
    const errors: unknown[] = [];
    const scheduler = new TickScheduler(clock, { onTaskError: (e) => errors.push(e) });
    const ran: number[] = [];
    const cancelled = scheduler.after(5, () => ran.push(1));
    scheduler.after(6, () => {
      throw new Error("device bug");
    });
    scheduler.after(7, () => ran.push(3));
    scheduler.cancel(cancelled);
    clock.advance(10);
    assert.deepEqual(ran, [3]);
    assert.equal(errors.length, 1);
  });

  it("tells onTaskError whose task threw, and a hook that throws itself stops nothing", () => {
    const clock = createManualClock(0);
    const owners: (string | undefined)[] = [];
    const scheduler = new TickScheduler(clock, {
      onTaskError: (_err, task) => {
        owners.push(task.owner);
        throw new Error("the hook's own bug");
      },
    });
    const ran: string[] = [];
    scheduler.forOwner("sim-7").after(1, () => {
      throw new Error("device bug");
    });
    scheduler.after(2, () => {
      throw new Error("fleet bug");
    });
    scheduler.forOwner("sim-8").after(3, () => ran.push("sim-8"));
    scheduler.after(20, () => ran.push("later"));
    clock.advance(10);
    assert.deepEqual(owners, ["sim-7", undefined]);
    assert.deepEqual(ran, ["sim-8"]);
    clock.advance(10);
    assert.deepEqual(ran, ["sim-8", "later"], "the timer was armed again");
  });

  it("lets a task schedule the next one (a periodic producer)", () => {
    const clock = createManualClock(0);
    const scheduler = new TickScheduler(clock);
    const times: number[] = [];
    const tick = () => {
      times.push(clock.now());
      if (times.length < 4) scheduler.after(100, tick);
    };
    scheduler.after(100, tick);
    clock.advance(1000);
    assert.deepEqual(times, [100, 200, 300, 400]);
  });

  it("re-arms for an earlier task added after a later one", () => {
    const clock = createManualClock(0);
    const scheduler = new TickScheduler(clock);
    const ran: number[] = [];
    scheduler.after(1000, () => ran.push(1000));
    scheduler.after(10, () => ran.push(10));
    clock.advance(10);
    assert.deepEqual(ran, [10]);
  });

  it("runs nothing after close", () => {
    const clock = createManualClock(0);
    const scheduler = new TickScheduler(clock);
    const ran: number[] = [];
    scheduler.after(10, () => ran.push(1));
    scheduler.close();
    scheduler.after(5, () => ran.push(2));
    clock.advance(100);
    assert.deepEqual(ran, []);
  });

  it("yields after maxTasksPerTurn and finishes the rest on the next turn", () => {
    const clock = createManualClock(0);
    const scheduler = new TickScheduler(clock, { maxTasksPerTurn: 2 });
    const ran: number[] = [];
    for (let i = 0; i < 5; i++) scheduler.after(1, () => ran.push(i));
    clock.advance(1);
    assert.deepEqual(ran, [0, 1, 2, 3, 4]);
  });
});
