/**
 * The runtime's in-memory durations (idle eviction, the onStart backoff, the quiet time of a throwing observer hook)
 * run on the clock's monotonic reading: a step of the wall clock in the middle of one, back an hour or forward a year
 * (NTP on a gateway without a real-time clock, an operator fixing the time), changes nothing. Alarms keep wall-clock
 * dates: clock-jump.test.ts.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type AgentRuntime, type RuntimeOptions } from "../../agents/index.ts";
import { OBSERVER_THROW_LOG_INTERVAL_MS } from "../../agents/guarded-observer.ts";
import { capturingLogger } from "../support/capturing-logger.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { tempDir, testRuntime } from "./helpers.ts";

const HOUR_MS = 3_600_000;
const YEAR_MS = 365 * 86_400_000;
const TIMEOUT_MS = 1_000;

const hang = { on: false, starts: 0 };

class Sleeper extends Agent {
  override onStart(): void | Promise<void> {
    hang.starts++;
    if (hang.on) return new Promise(() => {});
  }
  ping(): string {
    return "pong";
  }
}

describe("the runtime's durations across a wall clock step", () => {
  const t = tempDir();
  after(() => t.remove());

  async function withRuntime(
    name: string,
    body: (rt: AgentRuntime, clock: ManualClock) => Promise<void>,
    extra: Partial<RuntimeOptions> = {},
  ): Promise<void> {
    hang.on = false;
    hang.starts = 0;
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, name), Sleeper, 7, { clock, ...extra });
    await rt.start();
    try {
      await body(rt, clock);
    } finally {
      hang.on = false;
      const stopped = rt.shutdown();
      await clock.advance(TIMEOUT_MS);
      await stopped;
    }
  }

  for (const [step, ms] of [
    ["back an hour", -HOUR_MS],
    ["forward a year", YEAR_MS],
  ] as const) {
    test(`an idle agent leaves memory after idleTimeoutMs, the wall clock stepped ${step} meanwhile`, async () => {
      await withRuntime(
        `idle-${ms}`,
        async (rt, clock) => {
          assert.equal((await rt.call("early", "ping", [])).ok, true);
          await clock.advance(600);
          assert.equal((await rt.call("late", "ping", [])).ok, true);
          clock.stepWall(ms);
          await clock.advance(400);
          assert.equal(rt.stats().active, 1, "the early agent left at its timeout, the late one stays");
          await clock.advance(600);
          assert.equal(rt.stats().active, 0, "the late agent left at its own");
        },
        { idleTimeoutMs: 1_000 },
      );
    });

    test(`the onStart backoff holds its full wait, the wall clock stepped ${step} meanwhile`, async () => {
      await withRuntime(
        `start-${ms}`,
        async (rt, clock) => {
          hang.on = true;
          void rt.call("a", "ping", []);
          await clock.advance(2 * TIMEOUT_MS);
          assert.equal(hang.starts, 2, "two timeouts in a row: the agent is not woken for 1 s");
          hang.on = false;
          clock.stepWall(ms);
          const refused = await rt.call("a", "ping", []);
          assert.equal(refused.ok === false && refused.code, "BRIDGE_ERR_AGENT_START_TIMEOUT");
          assert.equal(hang.starts, 2, "no start was tried before the backoff's end");
          await clock.advance(1_000);
          assert.deepEqual(await rt.call("a", "ping", []), { ok: true, value: "pong" });
        },
        { callbackTimeoutMs: TIMEOUT_MS },
      );
    });

    test(`a throwing observer hook stays out of the log for its interval, the wall clock stepped ${step}`, async () => {
      const { logger, lines } = capturingLogger<{ hook?: string }>("warn");
      const broken = (): never => {
        throw new Error("metrics broke");
      };
      await withRuntime(
        `observer-${ms}`,
        async (rt, clock) => {
          const logged = () => lines.filter((l) => l.hook === "onEvent").length;
          await rt.call("a", "ping", []);
          assert.equal(logged(), 1);
          clock.stepWall(ms);
          await rt.call("a", "ping", []);
          assert.equal(logged(), 1, "still within the interval");
          await clock.advance(OBSERVER_THROW_LOG_INTERVAL_MS);
          await rt.call("a", "ping", []);
          assert.equal(logged(), 2, "logged once the interval is over");
        },
        { logger, observer: { onEvent: broken } },
      );
    });
  }
});
