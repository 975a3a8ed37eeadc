import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import Fastify from "fastify";
import type { InboundMessage } from "../../agents/host.ts";
import { approxSize, createMetrics, registerMetricsRoute, SlidingWindow, trackHost } from "../../app/metrics/index.ts";
import { ManualClock } from "../support/manual-clock.ts";

/** A whole second, as the metrics' one-second buckets were first tested with. */
const START_MS = 1_700_000_000_000;

describe("metrics", () => {
  const app = Fastify();
  after(() => app.close());

  test("a scrape shows every named series after the observers were called", async () => {
    const clock = new ManualClock(START_MS);
    const metrics = createMetrics({ clock });
    metrics.setSources({ runtime: { stats: () => ({ active: 3, hibernated: 7, mailboxDepth: 2, commits: 11 }) } });
    metrics.brokerObserver.connectionOpened?.("tcp");
    metrics.brokerObserver.messageIn?.("telemetry", "cbor");
    metrics.brokerObserver.messageOut?.("cmd", "cbor");
    metrics.brokerObserver.decodeError?.("BRIDGE_ERR_FRAME_DECODE");
    metrics.brokerObserver.limitBreach?.("BRIDGE_ERR_RATE_LIMITED");
    metrics.runtimeObserver.onCommit?.({ agentId: "a", events: 4, durationMs: 3 });
    metrics.runtimeObserver.onError?.({ agentId: "a", event: "message", code: "BRIDGE_ERR_X" });
    metrics.engineObserver.onDispatch?.({ agentId: "a", replica: "r1", queueWaitMs: 20, attempt: 1 });
    metrics.engineObserver.onFirstToken?.({ agentId: "a", replica: "r1", ttftMs: 150 });
    metrics.engineObserver.onComplete?.({
      agentId: "a",
      replica: "r1",
      usage: { promptTokens: 10, completionTokens: 5, cachedTokens: 8 },
      durationMs: 400,
      tokensPerSecond: 20,
      finishReason: "stop",
    });
    metrics.engineObserver.onError?.({ agentId: "a", replica: "r1", code: "BRIDGE_ERR_ENGINE_OVERLOADED" });
    metrics.commandState("SUCCEEDED");
    metrics.socketObserver.opened();

    await registerMetricsRoute(app, metrics, { token: "t".repeat(32) });
    const denied = await app.inject({ method: "GET", url: "/metrics" });
    assert.equal(denied.statusCode, 401);
    assert.equal(denied.json().error.code, "BRIDGE_ERR_API_UNAUTHORIZED");

    const res = await app.inject({
      method: "GET",
      url: "/metrics",
      headers: { authorization: `Bearer ${"t".repeat(32)}` },
    });
    assert.equal(res.statusCode, 200);
    assert.match(res.headers["content-type"] as string, /text\/plain/);
    assert.equal(res.headers["cache-control"], "no-store", "a proxy must not serve an old scrape");
    const text = res.body;
    const expected = [
      'bridge_connections{transport="tcp"} 1',
      'bridge_connections{transport="agent-ws"} 1',
      'bridge_messages_in_total{channel="telemetry",codec="cbor"} 1',
      'bridge_messages_out_total{channel="cmd",codec="cbor"} 1',
      'bridge_decode_errors_total{code="BRIDGE_ERR_FRAME_DECODE"} 1',
      'bridge_limit_breaches_total{code="BRIDGE_ERR_RATE_LIMITED"} 1',
      "bridge_mailbox_depth 2",
      "bridge_agents_active 3",
      "bridge_agents_hibernated 7",
      "bridge_commits_total 1",
      "bridge_commit_duration_seconds_count 1",
      'bridge_command_states_total{state="SUCCEEDED"} 1',
      "bridge_engine_queue_wait_seconds_count 1",
      "bridge_engine_time_to_first_token_seconds_count 1",
      'bridge_engine_tokens_total{type="completion"} 5',
      'bridge_engine_errors_total{code="BRIDGE_ERR_ENGINE_OVERLOADED"} 1',
      'bridge_errors_total{code="BRIDGE_ERR_X"} 1',
      "process_cpu_user_seconds_total",
      "nodejs_heap_size_used_bytes",
    ];
    for (const line of expected) assert.ok(text.includes(line), `missing ${line}`);
  });

  test("live rates count messages per second over the window and forget old seconds", () => {
    const clock = new ManualClock(START_MS);
    const metrics = createMetrics({ clock, defaultMetrics: false, activityWindowSeconds: 10 });
    for (let i = 0; i < 20; i++) metrics.brokerObserver.messageIn?.("telemetry", "json");
    clock.advanceSync(1000);
    metrics.brokerObserver.messageOut?.("cmd", "json");
    let rates = metrics.activity.rates();
    assert.equal(rates.inPerSecond, 2);
    assert.equal(rates.outPerSecond, 0.1);
    assert.equal(rates.history.length, 10);
    assert.equal(rates.history.at(-2)?.in, 20);
    clock.advanceSync(10_000);
    rates = metrics.activity.rates();
    assert.equal(rates.inPerSecond, 0);
    assert.equal(rates.outPerSecond, 0);
  });

  test("a step of the wall clock neither empties nor stretches the live rates' window", () => {
    const clock = new ManualClock(START_MS);
    const metrics = createMetrics({ clock, defaultMetrics: false, activityWindowSeconds: 10 });
    for (let i = 0; i < 20; i++) metrics.brokerObserver.messageIn?.("telemetry", "json");
    clock.advanceSync(1000);
    // NTP steps the clock back an hour: the messages of a second ago are still the last minute's.
    clock.stepWall(-3_600_000);
    assert.equal(metrics.activity.rates().inPerSecond, 2);
    metrics.brokerObserver.messageIn?.("telemetry", "json");
    clock.stepWall(86_400_000);
    assert.equal(metrics.activity.rates().inPerSecond, 2.1);
    const history = metrics.activity.rates().history;
    assert.deepEqual(
      history.slice(-2).map((point) => point.in),
      [20, 1],
    );
    // The points are dated on the wall clock as it reads now, one whole second apart.
    assert.equal(history.at(-1)?.t, Math.floor(clock.now() / 1000) * 1000);
    assert.equal(history.at(0)?.t, Math.floor(clock.now() / 1000) * 1000 - 9000);
    // A step back does not keep seconds longer than the window: 10 s on, the first second has left it.
    clock.advanceSync(8000);
    clock.stepWall(-5000);
    clock.advanceSync(1000);
    assert.equal(metrics.activity.rates().inPerSecond, 0.1);
    clock.advanceSync(1000);
    assert.equal(metrics.activity.rates().inPerSecond, 0);
  });

  test("a sliding window refuses a window that is not a positive integer", () => {
    assert.throws(() => new SlidingWindow(["a"], new ManualClock(START_MS), 0), /windowSeconds/);
  });

  test("a sliding window counts on a clock whose monotonic reading is negative, as it reads it back", () => {
    // An injected clock may start its monotonic reading anywhere: seconds before 0 are seconds like any other.
    const clock = { wall: START_MS, monotonic: -2_500, now: () => clock.wall, monotonicNow: () => clock.monotonic };
    const window = new SlidingWindow(["a"], clock, 3);
    window.add("a");
    window.add("a", 2);
    assert.deepEqual(
      window.points().map((p) => p.a),
      [0, 0, 3],
    );
    clock.monotonic += 1_000;
    window.add("a");
    clock.monotonic += 1_000; // from -0.5 s to 0.5 s: across zero
    window.add("a", 5);
    assert.deepEqual(
      window.points().map((p) => p.a),
      [3, 1, 5],
    );
    clock.monotonic += 1_000;
    assert.deepEqual(window.totals(), { a: 6 }, "the first second left the window");
  });

  test("engine activity averages time to first token and queue wait over the window", () => {
    const clock = new ManualClock(START_MS);
    const metrics = createMetrics({ clock, defaultMetrics: false });
    assert.equal(metrics.activity.engine().ttftMsMean, null);
    metrics.engineObserver.onFirstToken?.({ agentId: "a", replica: "r", ttftMs: 100 });
    metrics.engineObserver.onFirstToken?.({ agentId: "b", replica: "r", ttftMs: 300 });
    metrics.engineObserver.onDispatch?.({ agentId: "b", replica: "r", queueWaitMs: 40, attempt: 1 });
    const e = metrics.activity.engine();
    assert.equal(e.ttftMsMean, 200);
    const history = metrics.activity.rates().history;
    assert.equal(history.at(-1)?.ttftMs, 200);
    assert.equal(history.at(-2)?.ttftMs, null);
    assert.equal(e.queueWaitMsMean, 40);
  });
});

describe("activity tracking", () => {
  test("telemetry readings through a tracked host become the device's last readings, large ones are not kept", async () => {
    const clock = new ManualClock(START_MS);
    const metrics = createMetrics({ clock, defaultMetrics: false });
    const delivered: string[] = [];
    const host = {
      open: async () => ({ status: "committed" as const }),
      deliver: (agentId: string, _c: string, message: InboundMessage) => {
        delivered.push(`${agentId}:${message.channel}`);
        return { accepted: true as const, done: Promise.resolve({ status: "committed" as const }) };
      },
      close: async () => ({ status: "committed" as const }),
      extra: () => "still reachable",
    };
    const tracked = trackHost(host, metrics.activity);
    tracked.deliver("d1", "c1", { channel: "telemetry", frame: { r: { temp: 21.5 } } });
    assert.deepEqual(metrics.activity.lastTelemetry("d1"), { at: clock.now(), readings: { temp: 21.5 } });
    clock.advanceSync(5000);
    tracked.deliver("d1", "c1", { channel: "telemetry", frame: { senml: [{ bn: "room/", n: "hum", v: 40 }] } });
    assert.deepEqual(metrics.activity.lastTelemetry("d1")?.readings, { "room/hum": 40 });
    tracked.deliver("d1", "c1", { channel: "telemetry", frame: { r: { blob: "x".repeat(5000) } } });
    assert.deepEqual(metrics.activity.lastTelemetry("d1")?.readings, { truncated: true });
    clock.advanceSync(1000);
    tracked.deliver("d1", "c1", { channel: "ack", frame: { id: "c", ok: true } });
    assert.equal(metrics.activity.lastSeen("d1"), clock.now());
    assert.deepEqual(delivered, ["d1:telemetry", "d1:telemetry", "d1:telemetry", "d1:ack"]);
    assert.equal(tracked.extra(), "still reachable");
    metrics.activity.forget("d1");
    assert.equal(metrics.activity.lastSeen("d1"), undefined);
  });

  test("rv readings show by alias name once the tracker saw the hello's metrics, else by index", () => {
    const clock = new ManualClock(START_MS);
    const metrics = createMetrics({ clock, defaultMetrics: false });
    const host = {
      open: async () => ({ status: "committed" as const }),
      deliver: (_a: string, _c: string, _m: InboundMessage) => ({
        accepted: true as const,
        done: Promise.resolve({ status: "committed" as const }),
      }),
      close: async () => ({ status: "committed" as const }),
    };
    const tracked = trackHost(host, metrics.activity);
    tracked.deliver("c1", "s1", { channel: "telemetry", frame: { rv: [21.5, null, 7] } });
    assert.deepEqual(metrics.activity.lastTelemetry("c1")?.readings, { "rv[0]": 21.5, "rv[2]": 7 });
    tracked.deliver("c1", "s1", { channel: "hello", frame: { fw: "1.0", metrics: ["temp", "hum", "co2"] } });
    tracked.deliver("c1", "s1", { channel: "telemetry", frame: { rv: [21.4, null, 612] } });
    assert.deepEqual(metrics.activity.lastTelemetry("c1")?.readings, { temp: 21.4, co2: 612 });
    // A hello without metrics keeps the table; rv beyond the table falls back to the index; r and rv both show.
    tracked.deliver("c1", "s1", { channel: "hello", frame: { fw: "1.1" } });
    tracked.deliver("c1", "s1", { channel: "telemetry", frame: { r: { seq: 9 }, rv: [20, 40, 600, 1] } });
    assert.deepEqual(metrics.activity.lastTelemetry("c1")?.readings, {
      seq: 9,
      temp: 20,
      hum: 40,
      co2: 600,
      "rv[3]": 1,
    });
    metrics.activity.forget("c1");
    tracked.deliver("c1", "s1", { channel: "telemetry", frame: { rv: [1] } });
    assert.deepEqual(metrics.activity.lastTelemetry("c1")?.readings, { "rv[0]": 1 });
  });

  test("the size estimate stops early and counts strings, bytes and nesting", () => {
    assert.ok(approxSize({ a: 1 }, 100) < 20);
    assert.ok(approxSize({ s: "x".repeat(500) }, 100) > 100);
    assert.ok(approxSize([new Uint8Array(300)], 100) > 100);
    assert.ok(approxSize({ deep: [[[["y".repeat(200)]]]] }, 100) > 100);
  });
});
