/**
 * The onStart backoff (agents/start-backoff.ts) against the rest of the agent's life: hibernation, destroy, its
 * alarms and queue, a restart and a shutdown. The backoff must outlive hibernation (a refused wake leaves the agent
 * asleep, and the idle timer evicts its cell between tries), end with a destroy, hold no timer of its own past a
 * shutdown, and leave no alarm or queue item of the agent unrun once onStart settles again.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type AgentRuntime, type RuntimeOptions } from "../../agents/index.ts";
import { START_RETRY_MAX_MS } from "../../agents/start-backoff.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { tempDir, testRuntime } from "./helpers.ts";

const TIMEOUT_MS = 1_000;
const START_TIMEOUT = "BRIDGE_ERR_AGENT_START_TIMEOUT";

/** Whether onStart hangs, how many starts ran, and the work that ran, with the clock's time. */
const agent = {
  /** The clock's time of the last start whose onStart settled. */
  started: 0,
  hanging: false,
  starts: 0,
  ran: [] as Array<{ what: string; at: number }>,
  clock: new ManualClock(),
};

/** While on, a queue item's attempt fails (once). */
const failFirstQueueAttempt = { on: false };

class Stubborn extends Agent {
  override onStart(): void | Promise<void> {
    agent.starts++;
    if (agent.hanging) return new Promise(() => {});
    agent.started = agent.clock.now();
  }
  later(seconds: number): void {
    this.schedule(seconds, "work", "schedule");
  }
  enqueue(): void {
    this.queue("work", "queue", { retry: { maxAttempts: 3, baseDelayMs: 10_000, maxDelayMs: 10_000 } });
  }
  work(what: string): void {
    // A queue item whose first attempt fails is still queued (with its pending mark) when the runtime stops.
    if (what === "queue" && failFirstQueueAttempt.on) {
      failFirstQueueAttempt.on = false;
      throw new Error("not yet");
    }
    agent.ran.push({ what, at: agent.clock.now() });
  }
  ping(): string {
    return "pong";
  }
}

describe("the onStart backoff across the agent's life", () => {
  const t = tempDir();
  after(() => t.remove());

  function runtime(name: string, extra: Partial<RuntimeOptions> = {}): AgentRuntime {
    return testRuntime(path.join(t.dir, name), Stubborn, 1, {
      clock: agent.clock,
      callbackTimeoutMs: TIMEOUT_MS,
      ...extra,
    });
  }

  function reset(): void {
    Object.assign(agent, { hanging: false, starts: 0, ran: [], clock: new ManualClock() });
    failFirstQueueAttempt.on = false;
  }

  async function stop(rt: AgentRuntime): Promise<void> {
    agent.hanging = false;
    const stopped = rt.shutdown();
    await agent.clock.advance(TIMEOUT_MS);
    await stopped;
  }

  /** Hangs onStart until the agent is in its backoff (two timeouts in a row). */
  async function intoBackoff(rt: AgentRuntime): Promise<void> {
    const before = agent.starts;
    agent.hanging = true;
    void rt.call("a", "ping", []);
    await agent.clock.advance(2 * TIMEOUT_MS);
    assert.equal(agent.starts, before + 2);
  }

  test("a schedule that falls due during the backoff runs in the start that ends it", async () => {
    reset();
    const rt = runtime("schedule", { idleTimeoutMs: 500 });
    await rt.start();
    try {
      assert.equal((await rt.call("a", "later", [30])).ok, true);
      await agent.clock.advance(1_000);
      assert.equal(rt.stats().active, 0, "asleep");
      await intoBackoff(rt);
      // Ten minutes of hanging starts: the schedule's alarm fires and is refused at each try meanwhile.
      for (let s = 0; s < 600; s++) await agent.clock.advance(1_000);
      assert.equal(agent.ran.length, 0, "nothing ran while onStart hung");
      agent.hanging = false;
      const recovered = agent.clock.now();
      for (let s = 0; s < 2 * START_RETRY_MAX_MS && agent.ran.length === 0; s += 1_000)
        await agent.clock.advance(1_000);
      assert.equal(agent.ran.length, 1, "the schedule ran, once");
      assert.equal(agent.ran[0].at, agent.started, "in the start that ended the backoff, not an alarm backoff later");
      assert.ok(agent.ran[0].at - recovered <= START_RETRY_MAX_MS, "within one step of the backoff");
    } finally {
      await stop(rt);
    }
  });

  test("the backoff outlives hibernation: a call after the idle timer evicted the cell is refused without a start", async () => {
    reset();
    const rt = runtime("hibernated", { idleTimeoutMs: 100 });
    await rt.start();
    try {
      await intoBackoff(rt);
      await agent.clock.advance(200);
      assert.equal(rt.stats().active, 0, "the never-woken cell left memory");
      const starts = agent.starts;
      const refused = await rt.call("a", "ping", []);
      assert.equal(refused.ok === false && refused.code, START_TIMEOUT);
      assert.equal(agent.starts, starts, "no start was tried for it");
    } finally {
      await stop(rt);
    }
  });

  test("a destroy ends the backoff: the next call makes a fresh agent at once, and no held retry wakes it later", async () => {
    reset();
    const rt = runtime("destroyed");
    await rt.start();
    try {
      await intoBackoff(rt);
      assert.equal(await rt.destroyAgent("a"), true);
      agent.hanging = false;
      const starts = agent.starts;
      assert.deepEqual(await rt.call("a", "ping", []), { ok: true, value: "pong" });
      assert.equal(agent.starts, starts + 1, "the fresh agent started once");
      await agent.clock.advance(START_RETRY_MAX_MS);
      assert.equal(agent.starts, starts + 1, "the old agent's retry did not wake the new one");
    } finally {
      await stop(rt);
    }
  });

  test("a queue item pending at a restart whose onStart hangs runs once onStart settles", async () => {
    reset();
    const first = runtime("restart");
    await first.start();
    failFirstQueueAttempt.on = true;
    assert.equal((await first.call("a", "enqueue", [])).ok, true);
    await agent.clock.advance(0);
    assert.equal(agent.ran.length, 0, "its first attempt failed: the item waits for its retry");
    await stop(first);

    agent.hanging = true;
    const second = runtime("restart");
    const starting = second.start();
    // The pending agent's wake at start: two time limits, then start() goes on.
    await agent.clock.advance(2 * TIMEOUT_MS);
    await starting;
    try {
      for (let s = 0; s < 120; s++) await agent.clock.advance(1_000);
      assert.equal(agent.ran.length, 0, "nothing ran while onStart hung");
      agent.hanging = false;
      for (let s = 0; s < 2 * START_RETRY_MAX_MS && agent.ran.length === 0; s += 1_000)
        await agent.clock.advance(1_000);
      assert.deepEqual(
        agent.ran.map((r) => r.what),
        ["queue"],
        "the queue item ran",
      );
    } finally {
      await stop(second);
    }
  });

  test("a shutdown during the backoff ends at once and leaves no timer behind", async () => {
    reset();
    const rt = runtime("shutdown");
    await rt.start();
    await intoBackoff(rt);
    assert.ok(agent.clock.pending > 0, "the retry waits on a timer");
    await rt.shutdown();
    assert.equal(agent.clock.pending, 0, "no timer is left to fire after the shutdown");
    const starts = agent.starts;
    await agent.clock.advance(START_RETRY_MAX_MS);
    assert.equal(agent.starts, starts);
  });
});
