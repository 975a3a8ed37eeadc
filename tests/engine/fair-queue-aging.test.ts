/** FairQueue priority aging on a manual clock (nothing starves, fairness inside a level holds) and its option. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { BridgeError } from "../../errors/index.ts";
import { ENGINE_CLIENT_DEFAULTS, FairQueue, createEngineClient } from "../../engine-client/index.ts";
import { ManualClock } from "../support/manual-clock.ts";

const AGING_MS = 1000;

function agingQueue(priorityAgingMs = AGING_MS): { queue: FairQueue<string>; clock: ManualClock } {
  const clock = new ManualClock();
  return { queue: new FairQueue<string>({ priorityAgingMs, clock }), clock };
}

/**
 * A dispatcher serving one item every `stepMs` while a fresh priority-`highPriority` item arrives just before
 * each turn (a steady stream that always has something waiting). Returns how long `target` waited before it came
 * out, or undefined when it did not within `maxSteps`.
 */
function waitUnderHighStream(
  queue: FairQueue<string>,
  clock: ManualClock,
  target: string,
  highPriority: number,
  stepMs: number,
  maxSteps: number,
): number | undefined {
  const start = clock.now();
  for (let step = 0; step < maxSteps; step++) {
    queue.push(`urgent-${step % 3}`, highPriority, `high-${step}`);
    if (queue.shift() === target) return clock.now() - start;
    clock.advanceSync(stepMs);
  }
  return undefined;
}

describe("fair queue priority aging", () => {
  test("a low-priority item is served within (gap + 1) aging steps while higher-priority items keep arriving", () => {
    const { queue, clock } = agingQueue();
    queue.push("quiet", 0, "low");
    const waited = waitUnderHighStream(queue, clock, "low", 3, 100, 1000);
    // Priority 0 against fresh priority-3 items: it ranks 0 + floor(waited / 1000), above 3 from 4000 ms on.
    assert.equal(waited, (3 + 1) * AGING_MS);
  });

  test("aging 0 keeps priority strict: the low-priority item waits as long as higher ones keep coming", () => {
    const { queue, clock } = agingQueue(0);
    queue.push("quiet", 0, "low");
    assert.equal(waitUnderHighStream(queue, clock, "low", 3, 100, 1000), undefined);
    assert.equal(queue.size, 1);
    assert.equal(queue.shift(), "low");
  });

  test("without aging the queue still prefers the higher level however long the lower one waited", () => {
    const { queue, clock } = agingQueue(0);
    queue.push("a", 0, "old-low");
    clock.advanceSync(3_600_000);
    queue.push("b", 1, "new-high");
    assert.deepEqual([queue.shift(), queue.shift()], ["new-high", "old-low"]);
  });

  test("aging never reorders items before a full step has passed: higher priority first, ties to the higher base", () => {
    const { queue, clock } = agingQueue();
    queue.push("a", 0, "low");
    clock.advanceSync(AGING_MS - 1);
    queue.push("b", 1, "high-1");
    queue.push("c", 1, "high-2");
    assert.equal(queue.shift(), "high-1", "0 + floor(999 / 1000) = 0 < 1");
    clock.advanceSync(1);
    assert.equal(queue.shift(), "high-2", "0 + 1 ties 1 + 0: the higher base priority wins");
    assert.equal(queue.shift(), "low");
  });

  test("an aged level keeps round-robin between its agents and FIFO within each agent", () => {
    const { queue, clock } = agingQueue();
    queue.push("flood", 0, "f0");
    queue.push("flood", 0, "f1");
    queue.push("flood", 0, "f2");
    queue.push("quiet", 0, "q0");
    queue.push("quiet", 0, "q1");
    clock.advanceSync(5 * AGING_MS);
    queue.push("urgent", 2, "u0");
    // The level-0 oldest (f0) ranks 5 > 2, so level 0 is served, one agent per turn, oldest first per agent.
    assert.deepEqual(
      Array.from({ length: 6 }, () => queue.shift()),
      ["f0", "q0", "f1", "q1", "f2", "u0"],
    );
  });

  test("the oldest item of a level is its first still waiting, so removing it lets the level rank by the next", () => {
    const { queue, clock } = agingQueue();
    queue.push("a", 0, "oldest");
    clock.advanceSync(3 * AGING_MS);
    queue.push("b", 0, "younger");
    queue.push("c", 2, "high");
    assert.equal(queue.remove("a", 0, "oldest"), true);
    // "younger" has waited 0 ms: level 0 ranks 0, below 2.
    assert.deepEqual([queue.shift(), queue.shift(), queue.shift()], ["high", "younger", undefined]);
    assert.equal(queue.size, 0);
  });

  test("remove and drain keep working with aging: removed items never come out, drain empties every level", () => {
    const { queue, clock } = agingQueue();
    queue.push("a", 0, "a0");
    queue.push("a", 0, "a1");
    queue.push("b", 4, "b0");
    clock.advanceSync(10 * AGING_MS);
    assert.equal(queue.remove("a", 0, "a0"), true);
    assert.equal(queue.remove("a", 0, "a0"), false, "already removed");
    assert.equal(queue.remove("a", 4, "a1"), false, "wrong level");
    assert.equal(queue.size, 2);
    assert.deepEqual(queue.drain().sort(), ["a1", "b0"]);
    assert.equal(queue.size, 0);
    assert.equal(queue.shift(), undefined);
    queue.push("c", 1, "c0");
    assert.equal(queue.shift(), "c0", "the queue is usable after a drain");
  });

  test("many removals behind a long-waiting item neither lose nor resurrect items", () => {
    const { queue, clock } = agingQueue();
    queue.push("stuck", 0, "first");
    for (let i = 0; i < 500; i++) {
      queue.push(`agent-${i % 7}`, 0, `gone-${i}`);
      assert.equal(queue.remove(`agent-${i % 7}`, 0, `gone-${i}`), true);
      clock.advanceSync(1);
    }
    queue.push("late", 0, "last");
    assert.equal(queue.size, 2);
    assert.deepEqual([queue.shift(), queue.shift(), queue.shift()], ["first", "last", undefined]);
  });

  test("a negative or non-finite aging step is refused", () => {
    assert.throws(() => new FairQueue({ priorityAgingMs: -1 }), RangeError);
    assert.throws(() => new FairQueue({ priorityAgingMs: Number.NaN }), RangeError);
  });
});

describe("engine client priorityAgingMs option", () => {
  test("defaults to 5000 ms and is refused at construction when negative or fractional, naming the field", () => {
    assert.equal(ENGINE_CLIENT_DEFAULTS.priorityAgingMs, 5000);
    for (const priorityAgingMs of [-1, 1.5, Number.NaN]) {
      assert.throws(
        () => createEngineClient({ urls: ["http://x"], priorityAgingMs }),
        (err: unknown) =>
          err instanceof BridgeError &&
          err.code === "BRIDGE_ERR_CONFIG" &&
          err.details.field === "engine.priorityAgingMs",
      );
    }
  });
});
