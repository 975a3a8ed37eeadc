/**
 * An agent whose onStart never settles. Every wake runs onStart, and one past callbackTimeoutMs retires the instance,
 * whose successor runs onStart again at once. With an onStart that hangs every time that was a loop with no end: one
 * try and one warn line per time limit for good, the events waiting for the agent passed from one instance to the
 * next with no answer ever, onError never told, and the failures handed from one instance to the next piling up.
 * Now the second timeout in a row fails what waits with BRIDGE_ERR_AGENT_START_TIMEOUT, and the agent's wakes back
 * off (1 s doubling to 5 min) until onStart settles again (agents/start-backoff.ts).
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type AgentRuntime, type CallResult } from "../../agents/index.ts";
import { MAX_HANDOVER_ERRORS } from "../../agents/retirement.ts";
import { START_RETRY_MAX_MS } from "../../agents/start-backoff.ts";
import { BridgeError } from "../../errors/index.ts";
import { capturingLogger } from "../support/capturing-logger.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { RecordingTransport, tempDir, testRuntime } from "./helpers.ts";

const TIMEOUT_MS = 1_000;
const START_TIMEOUT = "BRIDGE_ERR_AGENT_START_TIMEOUT";
const CALLBACK_TIMEOUT = "BRIDGE_ERR_CALLBACK_TIMEOUT";

/** Whether onStart hangs, how many starts ran, and what onError heard. */
const agent = { hanging: false, hangOnce: false, starts: 0, errors: [] as Array<{ event: string; code: string }> };

class Stubborn extends Agent {
  override onStart(): void | Promise<void> {
    agent.starts++;
    if (agent.hangOnce) {
      agent.hangOnce = false;
      return new Promise(() => {});
    }
    if (agent.hanging) return new Promise(() => {});
  }
  ping(): string {
    return "pong";
  }
  override onError(error: unknown, context: { event: string }): void {
    agent.errors.push({ event: context.event, code: error instanceof BridgeError ? error.code : String(error) });
  }
}

/** A call whose answer the test reads without awaiting it (one that never comes must not hang the test). */
function pending(p: Promise<CallResult>): { result: CallResult | undefined } {
  const box: { result: CallResult | undefined } = { result: undefined };
  void p.then((r) => {
    box.result = r;
  });
  return box;
}

describe("an agent whose onStart never settles", () => {
  const t = tempDir();
  after(() => t.remove());

  let clock: ManualClock;
  let lines: Array<Record<string, unknown>>;
  async function withRuntime(name: string, body: (rt: AgentRuntime) => Promise<void>): Promise<void> {
    Object.assign(agent, { hanging: false, hangOnce: false, starts: 0, errors: [] });
    clock = new ManualClock();
    const captured = capturingLogger("info");
    lines = captured.lines;
    const rt = testRuntime(path.join(t.dir, name), Stubborn, 1, {
      clock,
      logger: captured.logger,
      callbackTimeoutMs: TIMEOUT_MS,
    });
    await rt.start();
    try {
      await body(rt);
    } finally {
      agent.hanging = false;
      const stopped = rt.shutdown();
      // A start hanging at shutdown holds the drain for up to one time limit.
      await clock.advance(TIMEOUT_MS);
      await stopped;
    }
  }

  test("callers waiting get BRIDGE_ERR_AGENT_START_TIMEOUT at the second timeout; later ones at once, without a wake", async () => {
    await withRuntime("callers", async (rt) => {
      agent.hanging = true;
      const calls = [pending(rt.call("a", "ping", [])), pending(rt.call("a", "ping", []))];
      await clock.advance(TIMEOUT_MS);
      assert.equal(agent.starts, 2, "the first timeout: a fresh instance at once, as for a hang that happens once");
      assert.deepEqual(
        calls.map((c) => c.result),
        [undefined, undefined],
        "the calls wait for it",
      );
      await clock.advance(TIMEOUT_MS);
      for (const c of calls) {
        assert.equal(c.result?.ok, false);
        assert.equal(c.result?.ok === false && c.result.code, START_TIMEOUT);
      }
      const now = await rt.call("a", "ping", []);
      assert.equal(now.ok === false && now.code, START_TIMEOUT, "a call during the backoff fails at once");
      assert.match(now.ok === false ? now.message : "", /onStart did not settle within callbackTimeoutMs 2 times/);
      assert.equal(agent.starts, 2, "and runs nothing of the agent");

      const transport = new RecordingTransport();
      const opened = await rt.open("a", { id: "c1", kind: "mqtt", codec: "json", transport });
      assert.deepEqual(
        opened.status === "failed" ? opened.code : opened.status,
        START_TIMEOUT,
        "a device connecting meanwhile is refused",
      );
      assert.deepEqual(agent.errors, [], "onError waits for an instance that starts");
    });
  });

  test("the tries back off, 1 s doubling to 5 min, with one warn line per try", async () => {
    await withRuntime("backoff", async (rt) => {
      agent.hanging = true;
      pending(rt.call("a", "ping", []));
      const startsAt: number[] = [];
      const t0 = clock.now();
      let seen = 0;
      for (let s = 0; s < 3_600; s++) {
        await clock.advance(1_000);
        if (agent.starts > seen) {
          seen = agent.starts;
          startsAt.push((clock.now() - t0) / 1_000);
        }
      }
      // Two starts by 1 s (the fresh instance at once after the first timeout), then each try a time limit and the
      // backoff after the one before: 1, 2, 4, ... 256 s, then 300 s.
      assert.deepEqual(startsAt.slice(0, 11), [1, 3, 6, 11, 20, 37, 70, 135, 264, 521, 822]);
      const gaps = startsAt.slice(11).map((at, i) => at - startsAt[10 + i]);
      assert.ok(
        gaps.every((g) => g === START_RETRY_MAX_MS / 1_000 + 1),
        `every later try 5 min and a time limit apart: ${gaps}`,
      );
      assert.ok(agent.starts < 25, `${agent.starts} starts in an hour, not 3600`);
      const warns = lines.filter((l) => l.level === 40);
      assert.ok(warns.length <= 2 * agent.starts, `${warns.length} warn lines for ${agent.starts} starts`);
      const steps = warns.filter((l) => String(l.msg).startsWith("onStart did not settle"));
      assert.equal(steps.length, agent.starts - 2 + 1, "one line per step of the backoff");
      // A device that keeps sending during the backoff adds no line of its own: its refusals are counted.
      for (let i = 0; i < 50; i++) await rt.call("a", "ping", []);
      await clock.advance(START_RETRY_MAX_MS + TIMEOUT_MS);
      const last = lines.filter((l) => String(l.msg).startsWith("onStart did not settle")).at(-1);
      assert.ok(Number(last?.refused) >= 50, `the next step's line counts the refusals: ${last?.refused}`);
    });
  });

  test("once onStart settles again the agent works, onError hears the timeouts, and a later single hang costs one time limit", async () => {
    await withRuntime("recovers", async (rt) => {
      agent.hanging = true;
      pending(rt.call("a", "ping", []));
      for (let s = 0; s < 60; s++) await clock.advance(1_000);
      const failed = agent.starts;
      assert.ok(failed >= 5, `${failed} starts hung`);
      agent.hanging = false;
      await clock.advance(START_RETRY_MAX_MS);
      assert.equal(agent.starts, failed + 1, "the next try started it");
      assert.deepEqual(await rt.call("a", "ping", []), { ok: true, value: "pong" });
      assert.deepEqual(
        agent.errors,
        Array.from({ length: failed }, () => ({ event: "onStart", code: CALLBACK_TIMEOUT })),
        "onError heard of every timeout, once",
      );
      assert.ok(lines.some((l) => String(l.msg).startsWith("onStart settles again")));

      // The run of timeouts ended: a single hang later gets a fresh instance at once, which runs what waited.
      const starts = agent.starts;
      agent.hangOnce = true;
      await clock.advance(60_000 + TIMEOUT_MS);
      const call = pending(rt.call("a", "ping", []));
      await clock.advance(TIMEOUT_MS);
      assert.equal(agent.starts, starts + 2);
      assert.deepEqual(call.result, { ok: true, value: "pong" });
    });
  });

  test("the failures handed from one retired instance to the next stay bounded over days", async () => {
    await withRuntime("bounded", async (rt) => {
      agent.hanging = true;
      pending(rt.call("a", "ping", []));
      // Well past MAX_HANDOVER_ERRORS tries: the first dozen come within 9 min, then one each 5 min.
      for (let m = 0; m < (MAX_HANDOVER_ERRORS + 20) * 5 + 10; m++) await clock.advance(60_000);
      assert.ok(agent.starts > MAX_HANDOVER_ERRORS + 10, `${agent.starts} starts`);
      agent.hanging = false;
      await clock.advance(START_RETRY_MAX_MS + TIMEOUT_MS);
      assert.deepEqual(await rt.call("a", "ping", []), { ok: true, value: "pong" });
      assert.equal(agent.errors.length, MAX_HANDOVER_ERRORS, "onError heard the first ones, the rest are in the log");
    });
  });
});
