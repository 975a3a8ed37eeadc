/**
 * Nothing of a call stays behind once it is over, however it ended: 2000 calls against the simulator, a few at a time
 * so that some wait for a slot, ending in every way a call can end (read to the end, a non-streamed answer, the
 * caller's abort before the call, while it waits, before the headers and mid-body, its deadline at those points, a
 * consumer that stops early or at `done` without finishing the iteration, an engine error retried or not, a stream
 * broken or dropped before its first byte, a call refused by validation). At the end no slot is held and nothing waits, the caller's signals have no listener left,
 * no timer of the client is pending, the engine saw every request end, and no per-call object of the client is alive
 * after a full garbage collection.
 */
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { test } from "node:test";
import { queryObjects } from "node:v8";
import type { ChatOptions, ChatRequest, ChatStreamEvent } from "../../agents/engine.ts";
import { BodyFeed } from "../../engine-client/body-feed.ts";
import { type Clock, systemClock, type TimerHandle, type TimerOptions } from "../../engine-client/clock.ts";
import { ConsumerWatchdog } from "../../engine-client/consumer-watchdog.ts";
import { createEngineClient } from "../../engine-client/index.ts";
import { RequestContext } from "../../engine-client/request-context.ts";
import { Attempted } from "../../engine-client/retry-loop.ts";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import { StreamHandler } from "../../engine-client/stream-dispatch.ts";
import { ChatStreamReader } from "../../engine-client/stream-reader.ts";
import { StreamedCall } from "../../engine-client/streamed-call.ts";
import { BridgeError } from "../../errors/index.ts";
import { waitFor } from "./support.ts";

const ASK: ChatRequest = { messages: [{ role: "user", content: "status?" }], maxTokens: 8 };
const CALLS = 2000;
const AT_ONCE = 6;
/** Deadlines far away, each of its own length, so that the test fires one call's deadline when it chooses. */
const DEADLINE_BASE_MS = 3_600_000;

/** The system clock, with every pending timer of the client known, and a deadline fired on demand. */
class TrackingClock implements Clock {
  readonly pending = new Map<number, { fn: () => void; delayMs: number; handle: TimerHandle }>();
  #seq = 0;

  now(): number {
    return Date.now();
  }

  monotonicNow(): number {
    return performance.now();
  }

  setTimeout(fn: () => void, delayMs: number, options?: TimerOptions): TimerHandle {
    const id = ++this.#seq;
    const handle = systemClock.setTimeout(
      () => {
        this.pending.delete(id);
        fn();
      },
      delayMs,
      options,
    );
    this.pending.set(id, { fn, delayMs, handle });
    return id;
  }

  clearTimeout(id: TimerHandle): void {
    const timer = this.pending.get(id as number);
    if (timer === undefined) return;
    systemClock.clearTimeout(timer.handle);
    this.pending.delete(id as number);
  }

  /** Fires now the pending timer armed for `delayMs`, if any (a deadline of DEADLINE_BASE_MS + n). */
  fire(delayMs: number): void {
    for (const [id, timer] of this.pending) {
      if (timer.delayMs !== delayMs) continue;
      this.clearTimeout(id);
      timer.fn();
    }
  }
}

type Ending =
  | "read to the end"
  | "read in batches"
  | "non-streamed"
  | "aborted before the call"
  | "aborted at once"
  | "aborted mid-body"
  | "closed mid-body"
  | "stopped at done"
  | "deadline at once"
  | "deadline mid-body"
  | "refused by validation";

const ENDINGS: Ending[] = [
  "read to the end",
  "read in batches",
  "non-streamed",
  "aborted before the call",
  "aborted at once",
  "aborted mid-body",
  "closed mid-body",
  "stopped at done",
  "deadline at once",
  "deadline mid-body",
  "refused by validation",
];

/** Engine faults set now and then; each hits whichever request the engine sees next. */
const FAULTS = [
  { failRequests: { status: 503, count: 1 } },
  { failRequests: { status: 400, count: 1 } },
  { failRequests: { status: 500, count: 1 } },
  { errorAfterTokens: { tokens: 2, count: 1 } },
  { dropAfterTokens: { tokens: 0, count: 1 } },
  { dropAfterTokens: { tokens: 2, count: 1 } },
];

test("2000 calls ending every way leave no slot, waiter, listener, timer or per-call object behind", async () => {
  const sim = await startEngineSimulator({ timeScale: 0, minOutputTokens: 4, maxOutputTokens: 6 });
  const clock = new TrackingClock();
  const engine = createEngineClient({
    urls: [sim.url],
    model: sim.model,
    clock,
    maxInFlightPerReplica: 4,
    retry: { baseDelayMs: 0, maxDelayMs: 0 },
    // Never cooled: every call reaches the engine, whatever failed before it.
    cooldown: { failureThreshold: 1_000_000 },
  });
  // One signal every call that is not aborted by its caller carries, as an agent's long-lived signal would.
  const shared = new AbortController();
  const callerSignals: AbortSignal[] = [shared.signal];
  let earlyCloses = 0;

  async function call(n: number): Promise<void> {
    const ending = ENDINGS[n % ENDINGS.length];
    const deadlineMs = DEADLINE_BASE_MS + n;
    const own = new AbortController();
    callerSignals.push(own.signal);
    const options: ChatOptions = { agentId: `dev-${n % 5}`, signal: shared.signal };
    if (ending.startsWith("aborted")) options.signal = own.signal;
    if (ending.startsWith("deadline")) options.timeoutMs = deadlineMs;
    if (ending === "aborted before the call") own.abort(new Error("gone before"));
    const request: ChatRequest = ending === "refused by validation" ? { messages: [] } : ASK;
    try {
      if (ending === "non-streamed") {
        await engine.complete(request, options);
        return;
      }
      if (ending === "read in batches") {
        await engine.streamBatches(request, options, () => {});
        return;
      }
      const events = engine.stream(request, options)[Symbol.asyncIterator]();
      const first = events.next();
      if (ending === "aborted at once") own.abort(new Error("gone at once"));
      if (ending === "deadline at once") clock.fire(deadlineMs);
      const opened: IteratorResult<ChatStreamEvent> = await first;
      if (opened.done === true) return;
      if (ending === "aborted mid-body") own.abort(new Error("gone mid-body"));
      if (ending === "deadline mid-body") clock.fire(deadlineMs);
      if (ending === "closed mid-body") {
        earlyCloses++;
        await events.return?.();
        return;
      }
      for (let next = await events.next(); next.done !== true; next = await events.next()) {
        // Read to the end; "stopped at done" leaves the iteration unfinished after the last event.
        if (ending === "stopped at done" && next.value.type === "done") return;
      }
    } catch (err) {
      assert.ok(err instanceof BridgeError, `call ${n} (${ending}) threw ${String(err)}`);
    }
  }

  try {
    for (let first = 0, wave = 0; first < CALLS; first += AT_ONCE, wave++) {
      if (wave % 7 === 3) sim.setFaults(FAULTS[Math.floor(wave / 7) % FAULTS.length]);
      await Promise.all(Array.from({ length: Math.min(AT_ONCE, CALLS - first) }, (_, i) => call(first + i)));
    }
    sim.clearFaults();

    const stats = engine.stats();
    assert.equal(stats.inFlight, 0, "slots held");
    assert.equal(stats.queued, 0, "requests waiting");
    assert.equal(stats.requests, CALLS);
    const failed = Object.values(stats.errors).reduce((a, b) => a + b, 0);
    assert.equal(stats.completed + failed + earlyCloses, CALLS, "every call completed, failed or was closed, once");
    for (const signal of callerSignals) assert.equal(getEventListeners(signal, "abort").length, 0, "abort listeners");
    // The stall probes that deadlines before the headers started end on their own, within their timeout.
    await waitFor(() => clock.pending.size === 0, "the client's timers to end");
    await waitFor(() => sim.stats().running === 0 && sim.stats().waiting === 0, "the engine to see every request end");
    assert.equal(sim.requests().filter((r) => r.outcome === "running").length, 0);
    for (const [name, ctor] of [
      ["RequestContext", RequestContext],
      ["StreamedCall", StreamedCall],
      ["StreamHandler", StreamHandler],
      ["BodyFeed", BodyFeed],
      ["ChatStreamReader", ChatStreamReader],
      ["ConsumerWatchdog", ConsumerWatchdog],
      ["Attempted", Attempted],
    ] as const) {
      assert.equal(queryObjects(ctor, { format: "count" }), 0, `${name} objects alive`);
    }
  } finally {
    await engine.close();
    await sim.close();
  }
});
