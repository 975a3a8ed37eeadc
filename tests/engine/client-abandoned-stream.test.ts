/**
 * A stream whose caller stops reading without closing it (drops the iterator, never calls `return()`) gives its
 * in-flight slot back once the engine's answer has waited unread for `consumerIdleTimeoutMs`, deadline or not.
 * Time is the client's injected clock.
 */
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, test } from "node:test";
import type { ChatRequest } from "../../agents/engine.ts";
import { ConsumerWatchdog } from "../../engine-client/consumer-watchdog.ts";
import { CONSUMER_IDLE_REASON, type EngineClient, createEngineClient } from "../../engine-client/index.ts";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import { BridgeError } from "../../errors/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { collect, handFedBody, waitFor } from "./support.ts";

const ASK: ChatRequest = { messages: [{ role: "user", content: "tell me everything" }] };
const tick = () => new Promise((resolve) => setImmediate(resolve));

/**
 * Moves the client's clock a window at a time until the slot is free. The answer reaches the client in real time,
 * so the first window may pass before any of it waits unread; the watchdog's exact timing is checked on a feed alone
 * (below), this only bounds how many windows it may take.
 */
async function advanceUntilFreed(clock: ManualClock, engine: EngineClient, windowMs: number): Promise<void> {
  for (let windows = 0; engine.stats().inFlight > 0; windows++) {
    assert.ok(windows < 50, "the abandoned stream never gave its slot back");
    await clock.advance(windowMs);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("an abandoned stream", () => {
  test("gives its slot back after consumerIdleTimeoutMs of unread answer, the engine sees the disconnect, and a caller coming back gets CANCELLED consumer-idle", async () => {
    // A long answer (5000 tokens, 2 ms each): the engine is still generating when the caller walks away.
    const sim = await startEngineSimulator({
      timeScale: 1,
      stepModel: { decodeBaseMs: 2, decodePerSeqMs: 0, decodePerSeqPerKTokensMs: 0, prefillMinMs: 0 },
      defaultMaxTokens: 5000,
      minOutputTokens: 5000,
      maxOutputTokens: 5000,
    });
    const clock = new ManualClock();
    const errors: string[] = [];
    const engine = createEngineClient({
      urls: [sim.url],
      model: sim.model,
      clock,
      maxInFlightPerReplica: 1,
      consumerIdleTimeoutMs: 1000,
      observer: { onError: (e) => errors.push(e.code) },
    });
    try {
      const iterator = engine.stream(ASK, { agentId: "walks-away" })[Symbol.asyncIterator]();
      const first = await iterator.next();
      assert.equal(first.done, false);
      // The caller stops here. The answer keeps arriving and waits unread.
      await clock.advance(999);
      assert.equal(engine.stats().inFlight, 1, "not before a whole window has passed");
      await advanceUntilFreed(clock, engine, 1000);
      assert.equal(clock.pending, 0, "no timer is left behind");
      assert.deepEqual(errors, ["BRIDGE_ERR_ENGINE_CANCELLED"]);
      await waitFor(() => sim.requests()[0].outcome === "aborted", "the engine to see the disconnect");

      const other = await collect(engine.stream({ ...ASK, maxTokens: 3 }, { agentId: "next" }));
      assert.equal(other.error, undefined, "the next request gets the only slot");

      const late = await iterator.next().then(
        () => assert.fail("the abandoned stream cannot go on"),
        (err: unknown) => err,
      );
      assert.ok(late instanceof BridgeError);
      assert.equal(late.code, "BRIDGE_ERR_ENGINE_CANCELLED");
      assert.equal(late.details.reason, CONSUMER_IDLE_REASON);
      assert.ok(typeof late.details.idleMs === "number" && late.details.idleMs >= 1000);
      assert.equal(engine.stats().errors.BRIDGE_ERR_ENGINE_CANCELLED, 1, "counted once, when it happened");
      assert.deepEqual(errors, ["BRIDGE_ERR_ENGINE_CANCELLED"]);
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("whose whole answer had already arrived unread still gives its slot back (the default window is 60 s)", async () => {
    const sim = await startEngineSimulator({ timeScale: 0 });
    const clock = new ManualClock();
    const engine = createEngineClient({ urls: [sim.url], model: sim.model, clock });
    try {
      const iterator = engine.stream(ASK, { agentId: "walks-away" })[Symbol.asyncIterator]();
      assert.equal((await iterator.next()).done, false);
      await waitFor(() => sim.requests()[0]?.outcome === "completed", "the engine to send the whole answer");
      await clock.advance(59_999);
      assert.equal(engine.stats().inFlight, 1);
      await advanceUntilFreed(clock, engine, 60_000);
      assert.equal(clock.pending, 0);
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("that took the answer's last reads, its end already arrived, and walked away before done still gives its slot back", async () => {
    // A raw engine: the first part of the answer, then (once the caller holds it) the rest, [DONE] and the end of
    // the body in one write. The caller is slow, so the rest and the end both wait unread; its next read takes the
    // rest (the text before [DONE]), and it walks away there, before the `done` that would give the slot back.
    const sse = (content: string) =>
      `data: ${JSON.stringify({ id: "x", choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
    let response: ServerResponse | undefined;
    const server = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(sse("one "));
        response = res;
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const clock = new ManualClock();
    const engine = createEngineClient({
      urls: [`http://127.0.0.1:${(server.address() as AddressInfo).port}`],
      model: "m",
      clock,
      consumerIdleTimeoutMs: 1000,
    });
    try {
      const iterator = engine.stream(ASK, { agentId: "walks-away" })[Symbol.asyncIterator]();
      assert.deepEqual((await iterator.next()).value, { type: "text", text: "one " });
      assert.equal(clock.pending, 0, "nothing waits unread yet");
      response?.end(`${sse("two")}data: [DONE]\n\n`);
      // The rest arrived unread (the watchdog armed its timer); the body's end comes with it.
      await waitFor(() => clock.pending === 1, "the rest of the answer to arrive");
      await tick();
      assert.deepEqual((await iterator.next()).value, { type: "text", text: "two" });
      // The caller stops here: the end of the body is all that still waits for it.
      assert.equal(engine.stats().inFlight, 1);
      await advanceUntilFreed(clock, engine, 1000);
      assert.equal(clock.pending, 0, "no timer is left behind");
    } finally {
      await engine.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test("a consumer that reads to the end is never disturbed and leaves no timer behind", async () => {
    const sim = await startEngineSimulator({ timeScale: 0 });
    const clock = new ManualClock();
    const engine = createEngineClient({ urls: [sim.url], model: sim.model, clock, consumerIdleTimeoutMs: 1 });
    try {
      const { error, events } = await collect(engine.stream(ASK, { agentId: "reads" }));
      assert.equal(error, undefined);
      assert.equal(events.at(-1)?.type, "done");
      assert.equal(clock.pending, 0);
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("that stops at done, without asking for the end of the iteration, leaves no deadline, listener or call behind", async () => {
    // `done` is the last event, so a caller may stop there: its generator stays suspended after yielding it, and its
    // finally (which ends the call) never runs. The call is over at done all the same.
    const sim = await startEngineSimulator({ timeScale: 0 });
    const clock = new ManualClock();
    const engine = createEngineClient({ urls: [sim.url], model: sim.model, clock });
    const caller = new AbortController();
    try {
      const iterator = engine
        .stream(ASK, { agentId: "stops-at-done", signal: caller.signal, timeoutMs: 60_000 })
        [Symbol.asyncIterator]();
      for (;;) {
        const next = await iterator.next();
        if (next.done === true) assert.fail("the iteration ended before done");
        if (next.value.type === "done") break;
      }
      assert.equal(engine.stats().inFlight, 0);
      // The request's deadline timer keeps the process alive (it is ref'd), so it must not outlive the call.
      assert.equal(clock.pending, 0, "the call's deadline timer is left armed");
      assert.equal(getEventListeners(caller.signal, "abort").length, 0, "the caller's signal is still listened to");
      // Aborting the caller's signal afterwards is nothing to the finished call: no error is counted.
      caller.abort(new Error("too late"));
      assert.deepEqual(engine.stats().errors, {});
      assert.equal(engine.stats().completed, 1);
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("consumerIdleTimeoutMs must be a positive integer", () => {
    assert.throws(
      () => createEngineClient({ consumerIdleTimeoutMs: 0 }),
      (err: unknown) => err instanceof BridgeError && err.details.field === "engine.consumerIdleTimeoutMs",
    );
  });
});

describe("the consumer watchdog of a body feed", () => {
  const watched = (idleTimeoutMs = 1000) => {
    const clock = new ManualClock();
    const body = handFedBody();
    const feed = body.feed;
    const idle: number[] = [];
    const watchdog = new ConsumerWatchdog(clock, idleTimeoutMs, (idleMs) => idle.push(idleMs));
    feed.watchConsumer(watchdog);
    return { clock, body, feed, idle, watchdog };
  };

  test("counts from the oldest unread read, not from the consumer's last read; one timer, re-armed lazily", async () => {
    const { clock, body, feed, idle } = watched();
    body.write("a");
    await tick();
    assert.equal(clock.pending, 1);
    clock.advanceSync(600);
    assert.equal(Buffer.concat((await feed.take()) ?? []).toString(), "a");
    body.write("b");
    body.write("c");
    await tick();
    assert.equal(clock.pending, 1, "still the one timer");
    clock.advanceSync(600);
    assert.deepEqual(idle, [], "b has waited 600 ms only: the timer re-armed itself for the rest");
    clock.advanceSync(399);
    assert.deepEqual(idle, []);
    clock.advanceSync(1);
    assert.deepEqual(idle, [1000]);
    assert.equal(clock.pending, 0);
  });

  test("a consumer waiting in take() when data comes arms nothing", async () => {
    const { clock, body, feed, idle } = watched();
    for (const text of ["a", "b", "c"]) {
      const waiting = feed.take();
      body.write(text);
      assert.equal(Buffer.concat((await waiting) ?? []).toString(), text);
    }
    assert.equal(clock.pending, 0);
    clock.advanceSync(10_000);
    assert.deepEqual(idle, []);
  });

  test("an end that arrived with the last reads still waits once those reads are taken", async () => {
    const { clock, body, feed, idle } = watched();
    body.end("a");
    await tick();
    assert.equal(Buffer.concat((await feed.take()) ?? []).toString(), "a");
    clock.advanceSync(999);
    assert.deepEqual(idle, []);
    clock.advanceSync(1);
    assert.deepEqual(idle, [1000], "the end was never taken");
    assert.equal(await feed.take(), null);
  });

  test("an end or an error left unread counts as waiting data; stop() disarms", async () => {
    const ended = watched();
    ended.body.end();
    await tick();
    ended.clock.advanceSync(1000);
    assert.deepEqual(ended.idle, [1000]);

    const failed = watched();
    failed.body.fail(new Error("reset"));
    await tick();
    failed.clock.advanceSync(1000);
    assert.deepEqual(failed.idle, [1000]);

    const stopped = watched();
    stopped.body.write("a");
    await tick();
    stopped.watchdog.stop();
    assert.equal(stopped.clock.pending, 0);
    stopped.clock.advanceSync(5000);
    assert.deepEqual(stopped.idle, []);
  });
});
