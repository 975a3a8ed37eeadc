import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type AgentRuntime, type RuntimeOptions, type Schedule, type Value } from "../../agents/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { tempDir, testRuntime } from "./helpers.ts";

const fired: Array<{ agent: string; payload: Value; type: string; at: number }> = [];
const errors: Array<{ agent: string; event: string }> = [];
let failuresLeft = 0;

class Alarmed extends Agent {
  tick(payload: Value, schedule: Schedule): void {
    fired.push({ agent: this.id, payload, type: schedule.type, at: this.env.clock.now() });
    this.sql`CREATE TABLE IF NOT EXISTS ticks (p TEXT)`;
    this.sql`INSERT INTO ticks (p) VALUES (${JSON.stringify(payload)})`;
  }
  flaky(payload: Value): void {
    if (failuresLeft > 0) {
      failuresLeft--;
      throw new Error("flaky callback");
    }
    fired.push({ agent: this.id, payload, type: "flaky", at: this.env.clock.now() });
  }
  override onError(_error: unknown, context: { event: string }): void {
    errors.push({ agent: this.id, event: context.event });
  }
  at(ms: number, payload: string): string {
    return this.schedule(new Date(ms), "tick", payload).id;
  }
  steps(ms: number, payloads: string[]): void {
    for (const payload of payloads) this.schedule(new Date(ms), "tick", payload);
  }
  after(seconds: number, payload: string): string {
    return this.schedule(seconds, "tick", payload).id;
  }
  cron(expr: string): string {
    return this.schedule(expr, "tick", "cron").id;
  }
  every(seconds: number): string {
    return this.scheduleEvery(seconds, "tick", "every").id;
  }
  flakyIn(seconds: number, maxAttempts: number): string {
    return this.schedule(seconds, "flaky", "f", { retry: { maxAttempts, baseDelayMs: 100, maxDelayMs: 1000 } }).id;
  }
  cancel(id: string): boolean {
    return this.cancelSchedule(id);
  }
  cancelling(payload: Value): void {
    this.cancelSchedule(String(payload));
  }
  cancelAt(ms: number, victim: string): string {
    return this.schedule(new Date(ms), "cancelling", victim).id;
  }
  list(type?: string): Array<{ id: string; type: string; time: number }> {
    const filter = type === undefined ? undefined : { type: type as Schedule["type"] };
    return this.getSchedules(filter).map((s) => ({ id: s.id, type: s.type, time: s.time }));
  }
  one(id: string): Value {
    const s = this.getSchedule(id);
    return s === undefined ? null : { id: s.id, method: s.method, payload: s.payload, type: s.type };
  }
  ranged(startMs: number, endMs: number): number {
    return this.getSchedules({ timeRange: { start: new Date(startMs), end: new Date(endMs) } }).length;
  }
  bad(): string {
    return this.schedule("not a cron", "tick").id;
  }
  noMethod(): string {
    return this.schedule(5, "missing").id;
  }
}

function runtime(dataDir: string, clock: ManualClock, extra: Partial<RuntimeOptions> = {}): AgentRuntime {
  return testRuntime(dataDir, Alarmed, 7, { clock, ...extra });
}

describe("agent schedules", () => {
  const t = tempDir();
  after(() => t.remove());

  test("delayed, dated, cron and interval schedules fire on the injected clock and one-shots are removed", async () => {
    fired.length = 0;
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 0, 0, 0));
    const rt = runtime(path.join(t.dir, "kinds"), clock);
    await rt.start();
    try {
      const t0 = clock.now();
      await rt.call("a", "after", [10, "ten"]);
      await rt.call("a", "at", [t0 + 5000, "five"]);
      await rt.call("a", "cron", ["*/30 * * * * *"]); // every 30 s, on :00 and :30
      await rt.call("a", "every", [20]);
      const kinds = await rt.call("a", "list", []);
      assert.ok(kinds.ok);
      assert.deepEqual((kinds.value as Array<{ type: string }>).map((s) => s.type).sort(), [
        "cron",
        "delayed",
        "interval",
        "scheduled",
      ]);
      await clock.advance(61_000);
      // Fired in time order, so compare by time; two due at the same moment run in the order they were set (below).
      const times = fired.map((f) => f.at);
      assert.deepEqual(
        times,
        [...times].sort((x, y) => x - y),
      );
      const got = fired
        .map((f) => ({ k: `${f.type}:${f.payload}@${(f.at - t0) / 1000}`, at: f.at }))
        .sort((x, y) => x.at - y.at || (x.k < y.k ? -1 : 1))
        .map((x) => x.k);
      assert.deepEqual(got, [
        "scheduled:five@5",
        "delayed:ten@10",
        "interval:every@20",
        "cron:cron@30",
        "interval:every@40",
        "cron:cron@60",
        "interval:every@60",
      ]);
      const left = await rt.call("a", "list", []);
      assert.ok(left.ok);
      assert.deepEqual((left.value as Array<{ type: string }>).map((s) => s.type).sort(), ["cron", "interval"]);
      assert.deepEqual(await rt.call("a", "list", ["cron"]), {
        ok: true,
        value: [
          {
            id: (left.value as Array<{ id: string; type: string }>).find((s) => s.type === "cron")!.id,
            type: "cron",
            time: t0 + 90_000,
          },
        ],
      });
    } finally {
      await rt.shutdown();
    }
  });

  test("getSchedule, time-range filters and cancelSchedule work, and bad schedules fail with named fields", async () => {
    fired.length = 0;
    const clock = new ManualClock();
    const rt = runtime(path.join(t.dir, "api"), clock);
    await rt.start();
    try {
      const t0 = clock.now();
      const id = (await rt.call("a", "after", [100, "x"])) as { ok: true; value: string };
      await rt.call("a", "after", [300, "y"]);
      assert.deepEqual(await rt.call("a", "one", [id.value]), {
        ok: true,
        value: { id: id.value, method: "tick", payload: "x", type: "delayed" },
      });
      assert.deepEqual(await rt.call("a", "ranged", [t0, t0 + 200_000]), { ok: true, value: 1 });
      assert.deepEqual(await rt.call("a", "cancel", [id.value]), { ok: true, value: true });
      assert.deepEqual(await rt.call("a", "cancel", [id.value]), { ok: true, value: false });
      await clock.advance(200_000);
      assert.deepEqual(fired, []);
      const bad = await rt.call("a", "bad", []);
      assert.equal(!bad.ok && bad.code, "BRIDGE_ERR_SCHEDULE_INVALID");
      const missing = await rt.call("a", "noMethod", []);
      assert.equal(!missing.ok && missing.code, "BRIDGE_ERR_SCHEDULE_INVALID");
    } finally {
      await rt.shutdown();
    }
  });

  test("a hibernated agent is woken by its alarm from the global index", async () => {
    fired.length = 0;
    const clock = new ManualClock();
    const rt = runtime(path.join(t.dir, "hib"), clock, { idleTimeoutMs: 1000 });
    await rt.start();
    try {
      const t0 = clock.now();
      await rt.call("sleepy", "after", [3600, "wake"]);
      await rt.call("other", "after", [1800, "half"]);
      await clock.advance(5000);
      assert.equal(rt.stats().active, 0);
      await clock.advance(3600_000);
      assert.deepEqual(
        fired.map((f) => `${f.agent}:${f.payload}@${(f.at - t0) / 1000}`),
        ["other:half@1800", "sleepy:wake@3600"],
      );
    } finally {
      await rt.shutdown();
    }
  });

  test("alarms missed while the runtime was down fire after start(), and pending ones after the restart", async () => {
    fired.length = 0;
    const dataDir = path.join(t.dir, "restart");
    const clock = new ManualClock();
    const t0 = clock.now();
    let rt = runtime(dataDir, clock);
    await rt.start();
    await rt.call("a", "after", [10, "missed"]);
    await rt.call("b", "after", [100, "later"]);
    await rt.call("c", "every", [30]);
    await rt.shutdown();
    await clock.advance(50_000); // the process is down: nothing fires
    assert.equal(fired.length, 0);
    rt = runtime(dataDir, clock);
    try {
      await rt.start();
      await clock.advance(0);
      assert.deepEqual(fired.map((f) => `${f.agent}:${f.payload}`).sort(), ["a:missed", "c:every"]);
      await clock.advance(60_000);
      const got = fired.map((f) => `${f.agent}:${f.payload}@${(f.at - t0) / 1000}`);
      assert.ok(got.includes("b:later@100"), got.join());
      assert.ok(got.includes("c:every@80"), got.join());
    } finally {
      await rt.shutdown();
    }
  });

  test("a schedule cancelled by an earlier callback of the same alarm run does not fire", async () => {
    fired.length = 0;
    const clock = new ManualClock();
    const rt = runtime(path.join(t.dir, "cancel-in-run"), clock);
    try {
      const t0 = clock.now();
      const victim = (await rt.call("a", "at", [t0 + 2000, "victim"])) as { ok: true; value: string };
      await rt.call("a", "cancelAt", [t0 + 1000, victim.value]);
      // Alarms are not armed before start(): both are due when it runs them, the canceller first (time order).
      await clock.advance(5000);
      await rt.start();
      await clock.advance(0);
      assert.deepEqual(fired, [], "cancelSchedule returned true, so the callback must not run");
      assert.deepEqual(await rt.call("a", "list", []), { ok: true, value: [] });
    } finally {
      await rt.shutdown();
    }
  });

  test("schedules due at the same moment run in the order they were set, also after a restart", async () => {
    const steps = ["open", "dose", "stir", "close", "rinse", "log"];
    const dataDir = path.join(t.dir, "same-moment");
    const clock = new ManualClock();
    // The ids are random: a tie broken by them ran "close" before "open" for most seeds.
    for (const seed of [1, 2, 3]) {
      fired.length = 0;
      const rt = testRuntime(path.join(dataDir, String(seed)), Alarmed, seed, { clock });
      await rt.start();
      try {
        await rt.call("a", "steps", [clock.now() + 1000, steps]);
        await clock.advance(2000);
        assert.deepEqual(
          fired.map((f) => f.payload),
          steps,
          `seed ${seed}`,
        );
      } finally {
        await rt.shutdown();
      }
    }
    fired.length = 0;
    let rt = runtime(path.join(dataDir, "restart"), clock);
    await rt.start();
    await rt.call("a", "steps", [clock.now() + 1000, steps]);
    await rt.shutdown();
    await clock.advance(5000);
    rt = runtime(path.join(dataDir, "restart"), clock);
    try {
      await rt.start();
      await clock.advance(0);
      assert.deepEqual(
        fired.map((f) => f.payload),
        steps,
      );
    } finally {
      await rt.shutdown();
    }
  });

  test("a cron may name a year (7 fields: it fires in that year, then its schedule ends) or be a nickname", async () => {
    fired.length = 0;
    const clock = new ManualClock(Date.UTC(2026, 11, 31, 0, 0, 0));
    const rt = runtime(path.join(t.dir, "cron-forms"), clock);
    await rt.start();
    try {
      const t0 = clock.now();
      const past = await rt.call("a", "cron", ["0 0 0 1 1 * 2020"]);
      assert.equal(!past.ok && past.code, "BRIDGE_ERR_SCHEDULE_INVALID", "a year gone never fires: refused");
      assert.equal((await rt.call("a", "cron", ["0 0 12 1 1 * 2027"])).ok, true);
      assert.equal((await rt.call("a", "cron", ["@hourly"])).ok, true);
      const times = await rt.call("a", "list", ["cron"]);
      assert.ok(times.ok);
      assert.deepEqual(
        (times.value as Array<{ time: number }>).map((s) => s.time).sort((x, y) => x - y),
        [t0 + 3_600_000, Date.UTC(2027, 0, 1, 12, 0, 0)],
      );
      await clock.advance(Date.UTC(2027, 0, 2) - t0);
      // @hourly fires at every hour; at noon on 1 January 2027 the year's cron fires beside it, once.
      const firesAt = (ms: number) => fired.filter((f) => f.at === ms).length;
      assert.equal(firesAt(Date.UTC(2027, 0, 1, 11, 0, 0)), 1);
      assert.equal(firesAt(Date.UTC(2027, 0, 1, 12, 0, 0)), 2, "the 2027 cron fired at its time");
      const left = await rt.call("a", "list", ["cron"]);
      assert.ok(left.ok);
      assert.equal((left.value as unknown[]).length, 1, "only @hourly is left: the 2027 cron has no next run");
    } finally {
      await rt.shutdown();
    }
  });

  test("an interval shorter than a millisecond is refused instead of firing in a zero-delay loop", async () => {
    fired.length = 0;
    const clock = new ManualClock();
    const rt = runtime(path.join(t.dir, "tiny-interval"), clock);
    await rt.start();
    try {
      const tiny = await rt.call("a", "every", [0.0001]);
      assert.equal(!tiny.ok && tiny.code, "BRIDGE_ERR_SCHEDULE_INVALID");
      await clock.advance(10);
      assert.deepEqual(fired, []);
      assert.equal((await rt.call("a", "every", [0.001])).ok, true, "one millisecond is the shortest interval");
    } finally {
      await rt.shutdown();
    }
  });

  test("a failing callback is retried per its options and then reported to onError; a later success stops retries", async () => {
    fired.length = 0;
    errors.length = 0;
    const clock = new ManualClock();
    const rt = runtime(path.join(t.dir, "retry"), clock);
    await rt.start();
    try {
      failuresLeft = 10;
      await rt.call("a", "flakyIn", [1, 3]);
      await clock.advance(10_000);
      assert.equal(failuresLeft, 7, "three attempts");
      assert.deepEqual(errors, [{ agent: "a", event: "schedule:flaky" }]);
      assert.deepEqual(await rt.call("a", "list", []), { ok: true, value: [] });

      failuresLeft = 1;
      await rt.call("a", "flakyIn", [1, 3]);
      await clock.advance(10_000);
      assert.equal(fired.length, 1);
      assert.equal(errors.length, 1);
    } finally {
      await rt.shutdown();
    }
  });

  test("a failing callback whose random backoff comes out as 0 is retried a millisecond later, not at once", async () => {
    fired.length = 0;
    errors.length = 0;
    const clock = new ManualClock();
    const start = clock.now();
    const rt = runtime(path.join(t.dir, "zero-backoff"), clock, { random: () => 0 });
    await rt.start();
    try {
      failuresLeft = 1;
      const id = await rt.call("a", "flakyIn", [1, 3]);
      await clock.advance(1000);
      assert.equal(failuresLeft, 0, "the first attempt ran and failed");
      assert.equal(fired.length, 0, "the retry waits for the next millisecond instead of running in the same run");
      assert.deepEqual(await rt.call("a", "list", []), {
        ok: true,
        value: [{ id: id.ok ? id.value : null, type: "delayed", time: start + 1001 }],
      });
      await clock.advance(1);
      assert.equal(fired.length, 1);
      assert.deepEqual(errors, []);
    } finally {
      await rt.shutdown();
    }
  });
});
