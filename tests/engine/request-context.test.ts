/**
 * A request's context is its own abort source: its listeners are told once, in order, for the caller's signal, the
 * deadline or an explicit abort, and an AbortSignal is made only for whoever asks for one.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { type AbortListener, RequestContext } from "../../engine-client/request-context.ts";
import type { Clock } from "../../engine-client/index.ts";
import type { BridgeError } from "../../errors/index.ts";
import { ManualClock } from "../support/manual-clock.ts";

function recorder(name: string, told: string[]): AbortListener {
  return { onAbort: (reason) => told.push(`${name}:${(reason as Error).message}`) };
}

test("listeners are told once, in the order they listened; one that left or came after the abort is not", () => {
  const ctx = new RequestContext({ agentId: "dev-1" }, "r", new ManualClock());
  const told: string[] = [];
  const first = recorder("first", told);
  const gone = recorder("gone", told);
  ctx.listen(first);
  ctx.listen(gone);
  ctx.listen(recorder("second", told));
  ctx.unlisten(gone);
  ctx.abort(new Error("stop"));
  ctx.abort(new Error("again"));
  ctx.listen(recorder("late", told));
  assert.deepEqual(told, ["first:stop", "second:stop"]);
  assert.equal(ctx.aborted, true);
  assert.equal((ctx.reason as Error).message, "stop");
});

test("the deadline aborts with TIMEOUT on the client's clock, and dispose stops it", () => {
  const clock = new ManualClock();
  const ctx = new RequestContext({ agentId: "dev-1", timeoutMs: 1000 }, "r", clock);
  const told: string[] = [];
  ctx.listen(recorder("handler", told));
  clock.advanceSync(999);
  assert.equal(ctx.aborted, false);
  clock.advanceSync(1);
  assert.equal(ctx.aborted, true);
  assert.equal((ctx.reason as BridgeError).code, "BRIDGE_ERR_ENGINE_TIMEOUT");
  assert.deepEqual(told, ["handler:engine request passed its deadline"]);

  const disposed = new RequestContext({ agentId: "dev-1", timeoutMs: 1000 }, "r", clock);
  disposed.dispose();
  assert.equal(clock.pending, 0);
});

test("the caller's signal aborts with CANCELLED keeping its reason; after dispose it is no longer heard", () => {
  const clock = new ManualClock();
  const caller = new AbortController();
  const ctx = new RequestContext({ agentId: "dev-1", signal: caller.signal }, "r", clock);
  caller.abort(new Error("device left"));
  assert.equal((ctx.reason as BridgeError).code, "BRIDGE_ERR_ENGINE_CANCELLED");
  assert.equal(((ctx.reason as BridgeError).cause as Error).message, "device left");

  const already = new RequestContext({ agentId: "dev-1", signal: AbortSignal.abort(new Error("gone")) }, "r", clock);
  assert.equal((already.reason as BridgeError).code, "BRIDGE_ERR_ENGINE_CANCELLED");

  const later = new AbortController();
  const disposed = new RequestContext({ agentId: "dev-1", signal: later.signal }, "r", clock);
  disposed.dispose();
  later.abort(new Error("after the end"));
  assert.equal(disposed.aborted, false);
});

test("an AbortSignal is made on demand and fires with the context, or is born aborted after it", () => {
  const ctx = new RequestContext({ agentId: "dev-1" }, "r", new ManualClock());
  const signal = ctx.signal;
  assert.equal(ctx.signal, signal, "one per context");
  const reason = new Error("stop");
  ctx.abort(reason);
  assert.equal(signal.aborted, true);
  assert.equal(signal.reason, reason);

  const late = new RequestContext({ agentId: "dev-1" }, "r", new ManualClock());
  late.abort(reason);
  assert.equal(late.signal.aborted, true);
  assert.equal(late.signal.reason, reason);
});

test("armed at once, the deadline timer gets the whole budget though the clock moved since the context read it", () => {
  // A clock whose every read is a millisecond later, as a busy loop's can be: the timer is armed on the time the
  // budget was turned into a deadline, so a caller that fires timers by their delay finds it (issue #5's CI).
  let t = 0;
  const delays: number[] = [];
  const clock: Clock = {
    now: () => 1000 + t++,
    monotonicNow: () => t++,
    setTimeout: (_fn, ms) => {
      delays.push(ms);
      return delays.length;
    },
    clearTimeout: () => {},
  };
  const ctx = new RequestContext({ agentId: "dev-1", timeoutMs: 30_000 }, "r", clock);
  assert.deepEqual(delays, [30_000]);
  assert.equal(ctx.deadline, 31_000);
});

test("armed later, it follows the signal and the deadline only from arm on; what came in between takes effect there", () => {
  const clock = new ManualClock();
  const caller = new AbortController();
  const ctx = new RequestContext({ agentId: "dev-1", signal: caller.signal, timeoutMs: 1000 }, "r", clock, true);
  assert.equal(clock.pending, 0, "no deadline timer before arm");
  caller.abort(new Error("device left"));
  assert.equal(ctx.aborted, false, "not listening yet");
  ctx.arm();
  assert.equal((ctx.reason as BridgeError).code, "BRIDGE_ERR_ENGINE_CANCELLED");

  const late = new RequestContext({ agentId: "dev-1", timeoutMs: 1000 }, "r", clock, true);
  clock.advanceSync(1000);
  assert.equal(late.aborted, false);
  late.arm();
  assert.equal((late.reason as BridgeError).code, "BRIDGE_ERR_ENGINE_TIMEOUT", "the deadline passed before arm");

  const armed = new RequestContext({ agentId: "dev-1", timeoutMs: 1000 }, "r", clock, true);
  clock.advanceSync(400);
  armed.arm();
  armed.arm();
  assert.equal(clock.pending, 1, "armed once");
  clock.advanceSync(599);
  assert.equal(armed.aborted, false);
  clock.advanceSync(1);
  assert.equal(
    (armed.reason as BridgeError).code,
    "BRIDGE_ERR_ENGINE_TIMEOUT",
    "at the deadline, not 1000 ms after arm",
  );

  const disposed = new RequestContext({ agentId: "dev-1", timeoutMs: 1000 }, "r", clock, true);
  disposed.dispose();
  disposed.arm();
  assert.equal(clock.pending, 0, "nothing armed after dispose");
});

test("a signal that is no AbortSignal is refused when the context is made, armed now or later", () => {
  const notASignal = {} as AbortSignal;
  for (const later of [false, true]) {
    assert.throws(
      () => new RequestContext({ agentId: "dev-1", signal: notASignal }, "r", new ManualClock(), later),
      TypeError,
    );
  }
});
