/**
 * When a streamed call can go at once (the model known, a free slot, nobody waiting), it is handed to undici's pool
 * inside the caller's call: an agent starts its engine round inside an event, and undici writes the request on the
 * loop's next check phase, so nothing may come between (issue #5). A call that finds others waiting queues behind
 * them, even at a moment a slot is free.
 */
import assert from "node:assert/strict";
import { createHook } from "node:async_hooks";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { after, before, describe, test } from "node:test";
import type { ChatRequest } from "../../agents/engine.ts";
import { type Clock, systemClock } from "../../engine-client/clock.ts";
import { type EngineClient, createEngineClient } from "../../engine-client/index.ts";
import { type EngineSimulator, startEngineSimulator } from "../../engine-client/sim/index.ts";
import { waitFor } from "./support.ts";

const ask = (content: string): ChatRequest => ({ messages: [{ role: "user", content }], maxTokens: 4 });

/** undici publishes here when a response has been read to its end (its trailers, none for these). */
const RESPONSE_ENDED = "undici:request:trailers";

/**
 * Runs a warm-up call and resolves once its connection is idle, as between a device's questions: the call may settle
 * at the stream's [DONE] a read before the response's last bytes, and undici frees the connection one immediate after
 * reading them. Waiting a fixed time instead failed on a loaded machine.
 */
async function warmUpUntilIdle(engine: EngineClient): Promise<void> {
  let ended!: () => void;
  const responseEnded = new Promise<void>((resolve) => {
    ended = resolve;
  });
  const onEnd = () => ended();
  subscribe(RESPONSE_ENDED, onEnd);
  try {
    await engine.streamBatches(ask("warm up"), { agentId: "dev-1" }, () => {}).catch(() => undefined);
    await responseEnded;
  } finally {
    unsubscribe(RESPONSE_ENDED, onEnd);
  }
  await new Promise((resolve) => setImmediate(resolve));
}

/** undici publishes here, synchronously, when a dispatched request reaches a connection's queue. */
const REQUEST_CREATED = "undici:request:create";
/** ... and here once it wrote the request's headers to the socket. */
const HEADERS_SENT = "undici:client:sendHeaders";

describe("a streamed call that can go at once", () => {
  let sim: EngineSimulator;
  let engine: EngineClient;

  before(async () => {
    sim = await startEngineSimulator({ timeScale: 0 });
    engine = createEngineClient({ urls: [sim.url], model: sim.model });
    // The pool's connection exists from here on, as it does between an agent's questions.
    await engine.streamBatches(ask("warm up"), { agentId: "dev-1" }, () => {});
  });
  after(async () => {
    await engine.close();
    await sim.close();
  });

  test("is handed to the pool before streamBatches returns, and nothing before makes or waits on a promise", async () => {
    const seen: string[] = [];
    let promisesBeforeDispatch = 0;
    const dispatched = () => seen.push("dispatched");
    // Every promise made in this process while the hook is on, until the request reaches undici.
    const hook = createHook({
      init(_id, type) {
        if (type === "PROMISE" && seen.length === 0) promisesBeforeDispatch++;
      },
    });
    const controller = new AbortController();
    subscribe(REQUEST_CREATED, dispatched);
    let call: Promise<void>;
    try {
      hook.enable();
      // The options an agent's round passes: its signal, a budget and a priority.
      call = engine.streamBatches(
        ask("at once"),
        { agentId: "dev-1", signal: controller.signal, timeoutMs: 60_000, priority: 0 },
        () => {},
      );
      hook.disable();
      // No microtask can run before this line: whatever the call did, it did synchronously.
      seen.push("returned");
    } finally {
      hook.disable();
      unsubscribe(REQUEST_CREATED, dispatched);
    }
    // Settled whatever the assertions find, so a failing one leaves no rejection unhandled.
    const outcome = call.then(
      () => undefined,
      (err: unknown) => err,
    );
    assert.deepEqual(seen, ["dispatched", "returned"]);
    assert.equal(promisesBeforeDispatch, 0, "promises made before the request reached the pool");
    assert.equal(await outcome, undefined);
    assert.equal(sim.requests().at(-1)?.outcome, "completed");
  });

  test("an argument fault that validation does not look at (a signal that is no AbortSignal) rejects, never throws", async () => {
    const notASignal = {} as AbortSignal;
    let call: Promise<void> | undefined;
    assert.doesNotThrow(() => {
      call = engine.streamBatches(ask("bad signal"), { agentId: "dev-1", signal: notASignal }, () => {});
    });
    await assert.rejects(call as Promise<void>, TypeError);
    assert.equal(engine.stats().inFlight, 0);
  });
});

describe("a streamed call sent at once, after its request was written", () => {
  test("arms its deadline and reports its slot and dispatch: nothing of that comes before the write", async () => {
    const sim = await startEngineSimulator({ timeScale: 0 });
    const seen: string[] = [];
    let recording = false;
    const note = (what: string) => {
      if (recording) seen.push(what);
    };
    const clock: Clock = {
      now: () => systemClock.now(),
      monotonicNow: () => systemClock.monotonicNow(),
      setTimeout: (fn, ms, options) => {
        // The deadline: what is left of the budget when it is armed (a millisecond may have passed).
        note(ms > 3_590_000 ? "deadline timer" : `timer ${ms} ms`);
        return systemClock.setTimeout(fn, ms, options);
      },
      clearTimeout: (handle) => systemClock.clearTimeout(handle),
    };
    const engine = createEngineClient({
      urls: [sim.url],
      model: sim.model,
      clock,
      observer: {
        onDispatch: () => note("dispatch reported"),
        onInFlight: ({ inFlight }) => note(`in flight ${inFlight}`),
      },
    });
    const written = () => note("written");
    subscribe(HEADERS_SENT, written);
    try {
      // The connection idle, so undici writes the next request on the check phase it queues at the dispatch.
      await warmUpUntilIdle(engine);
      recording = true;
      const controller = new AbortController();
      const call = engine.streamBatches(
        ask("at once"),
        { agentId: "dev-1", signal: controller.signal, timeoutMs: 3_600_000 },
        () => {},
      );
      note("returned");
      await call;
      recording = false;
      // Then the reading's own timers, and the slot given back at the end.
      assert.deepEqual(seen.slice(0, 5), ["returned", "written", "deadline timer", "in flight 1", "dispatch reported"]);
      assert.equal(seen.at(-1), "in flight 0");
      assert.equal(sim.requests().at(-1)?.outcome, "completed");
    } finally {
      unsubscribe(HEADERS_SENT, written);
      await engine.close();
      await sim.close();
    }
  });

  test("a signal aborted before that is followed all the same: the request is aborted and the engine sees it", async () => {
    const sim = await startEngineSimulator({ timeScale: 1, faults: { firstTokenDelayMs: 1_000 } });
    const engine = createEngineClient({ urls: [sim.url], model: sim.model });
    try {
      // Idle, so the request is written before the signal is followed (see above).
      await warmUpUntilIdle(engine);
      const controller = new AbortController();
      const call = engine.streamBatches(ask("left"), { agentId: "dev-1", signal: controller.signal }, () => {});
      // Aborted in the same turn, before the listener exists.
      controller.abort(new Error("device left"));
      await assert.rejects(call, { code: "BRIDGE_ERR_ENGINE_CANCELLED" });
      assert.equal(engine.stats().inFlight, 0);
      await waitFor(() => sim.requests().some((r) => r.outcome === "aborted"), "the engine to see the request aborted");
    } finally {
      await engine.close();
      await sim.close();
    }
  });
});

describe("a streamed call made while another waits in the queue", () => {
  test("is not dispatched at once, even at a moment a slot is free, and goes after the one that waited", async () => {
    const sim = await startEngineSimulator({ timeScale: 0 });
    let engine: EngineClient | undefined;
    let third: Promise<void> | undefined;
    let thirdWentAtOnce: boolean | undefined;
    engine = createEngineClient({
      urls: [sim.url],
      model: sim.model,
      maxInFlightPerReplica: 1,
      observer: {
        // The first call's slot is back and the second call has not been let in yet: a slot is free while a call
        // waits. A call made now must queue behind it.
        onInFlight: ({ inFlight }) => {
          if (inFlight !== 0 || third !== undefined || engine === undefined || engine.stats().queued !== 1) return;
          const attempts = engine.stats().replicas[0].attempts;
          third = engine.streamBatches(ask("third"), { agentId: "c" }, () => {});
          thirdWentAtOnce = engine.stats().replicas[0].attempts > attempts;
        },
      },
    });
    try {
      const first = engine.streamBatches(ask("first"), { agentId: "a" }, () => {});
      const second = engine.streamBatches(ask("second"), { agentId: "b" }, () => {});
      assert.equal(engine.stats().queued, 1, "the second call waits for the only slot");
      await Promise.all([first, second]);
      assert.ok(third !== undefined, "the third call was made while the second waited");
      await third;
      assert.equal(thirdWentAtOnce, false, "the third call was sent ahead of the one waiting");
      const order = sim.requests().map((r) => (r.body as { messages: { content: string }[] }).messages[0].content);
      assert.deepEqual(order, ["first", "second", "third"]);
    } finally {
      await engine.close();
      await sim.close();
    }
  });
});
