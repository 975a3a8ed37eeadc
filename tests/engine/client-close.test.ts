/**
 * `close()` ends every call still running when it is called, not only the ones whose caller reads again: once it has
 * resolved, no timer of any call is armed (a deadline keeps the process alive), no caller's signal is listened to, no
 * slot is held and nothing waits, whatever each call was doing: streamed or not, queued in admission, in flight
 * before its headers, mid-body with a consumer reading or with one that stopped reading, draining the body after
 * `[DONE]`, or inside a retry's backoff.
 * Every call fails with CANCELLED (a consumer that stopped reading hears of it at its next read).
 */
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, test } from "node:test";
import { queryObjects } from "node:v8";
import type { ChatOptions, ChatRequest, ChatStreamEvent } from "../../agents/engine.ts";
import { type EngineClient, createEngineClient } from "../../engine-client/index.ts";
import { RequestContext } from "../../engine-client/request-context.ts";
import { StreamedCall } from "../../engine-client/streamed-call.ts";
import { BridgeError } from "../../errors/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { fixedRandom, waitFor } from "./support.ts";

/** What the test engine does with a request, named by the request's only message. */
type Behaviour = "busy" | "hold-stream" | "hold-after-done" | "hold-answer";

const ask = (behaviour: Behaviour): ChatRequest => ({ messages: [{ role: "user", content: behaviour }] });

/** Far enough away that only close() can end a call: the manual clock never moves in these tests. */
const BUDGET_MS = 7_200_000;
/** A backoff of 1.8 M ms (half of this, with the random source fixed at 0.5): well inside the budget. */
const BACKOFF_MS = 3_600_000;

const sse = (content: string) =>
  `data: ${JSON.stringify({ id: "x", choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;

/**
 * An engine that answers "busy" with a 503 (retried after a backoff), "hold-stream" with the first chunk of an
 * answer and then nothing, "hold-after-done" with the whole answer and `[DONE]` but no end of the body, and
 * "hold-answer" with nothing at all (no headers). It counts the requests it saw and the
 * ones whose connection the client closed.
 */
async function startHoldingEngine(): Promise<{
  url: string;
  seen: () => number;
  gone: () => number;
  close(): Promise<void>;
}> {
  let seen = 0;
  let gone = 0;
  const held: ServerResponse[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const parts: Buffer[] = [];
    req.on("data", (part: Buffer) => parts.push(part));
    req.on("end", () => {
      seen++;
      res.on("close", () => gone++);
      const content = (JSON.parse(Buffer.concat(parts).toString("utf8")) as { messages: { content: string }[] })
        .messages[0].content as Behaviour;
      if (content === "busy") {
        res.writeHead(503, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { message: "busy", type: "ServiceUnavailableError" } }));
        return;
      }
      held.push(res);
      if (content === "hold-stream") {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(sse("first "));
      }
      if (content === "hold-after-done") {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(`${sse("all")}data: [DONE]\n\n`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen: () => seen,
    gone: () => gone,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Settles to the error a call failed with (the test fails if it succeeded). */
async function failure(promise: Promise<unknown>, what: string): Promise<BridgeError> {
  const err = await promise.then(
    () => assert.fail(`${what} succeeded after close()`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof BridgeError, `${what} threw ${String(err)}`);
  return err;
}

/** Reads a stream to its end (or its error). */
async function readAll(stream: AsyncIterable<ChatStreamEvent>): Promise<void> {
  for await (const _ of stream) {
    // Only the end matters.
  }
}

describe("close()", () => {
  test("ends every running call at once: no timer armed, no listener, no slot, no waiter, no per-call object left", async () => {
    const engine = await startHoldingEngine();
    const clock = new ManualClock();
    const client: EngineClient = createEngineClient({
      urls: [engine.url],
      model: "m",
      clock,
      random: fixedRandom(0.5),
      maxInFlightPerReplica: 5,
      retry: { maxAttempts: 2, baseDelayMs: BACKOFF_MS, maxDelayMs: BACKOFF_MS },
    });
    const signals: AbortSignal[] = [];
    const options = (agentId: string): ChatOptions => {
      const signal = new AbortController().signal;
      signals.push(signal);
      return { agentId, signal, timeoutMs: BUDGET_MS };
    };
    const calls: { what: string; ended: Promise<BridgeError> }[] = [];
    const ends = (what: string, call: Promise<unknown>) => calls.push({ what, ended: failure(call, what) });
    try {
      // Two calls in a retry's backoff: the engine said 503, their slots are back, their sleep is armed.
      ends("streamed in backoff", readAll(client.stream(ask("busy"), options("a"))));
      ends("non-streamed in backoff", client.complete(ask("busy"), options("b")));
      await waitFor(() => client.stats().retries === 2, "both calls to back off");

      // Five calls in flight, the replica's whole capacity.
      const stopped = client.stream(ask("hold-stream"), options("c"))[Symbol.asyncIterator]();
      assert.deepEqual((await stopped.next()).value, { type: "text", text: "first " });
      // The caller of `stopped` stops reading here, without closing it.
      const reading = client.stream(ask("hold-stream"), options("d"))[Symbol.asyncIterator]();
      assert.deepEqual((await reading.next()).value, { type: "text", text: "first " });
      ends("streamed mid-body, consumer reading", reading.next());
      ends("streamed before headers", readAll(client.stream(ask("hold-answer"), options("e"))));
      ends("non-streamed in flight", client.complete(ask("hold-answer"), options("f")));
      // Its consumer waits for the end of the answer while the client drains the body the engine holds open.
      const draining = client.stream(ask("hold-after-done"), options("i"))[Symbol.asyncIterator]();
      assert.deepEqual((await draining.next()).value, { type: "text", text: "all" });
      ends("streamed draining after [DONE]", draining.next());
      await waitFor(() => engine.seen() === 7, "the engine to hold five requests");
      assert.equal(client.stats().inFlight, 5);

      // Two calls queued in admission behind them.
      ends("streamed queued", readAll(client.stream(ask("hold-answer"), options("g"))));
      ends("non-streamed queued", client.complete(ask("hold-answer"), options("h")));
      await waitFor(() => client.stats().queued === 2, "two calls to queue");
      await waitFor(() => clock.pending === 12, "nine deadlines, two backoffs and a drain to be armed");

      await client.close();

      assert.equal(clock.pending, 0, "a timer of a call is still armed after close()");
      for (const signal of signals) {
        assert.equal(getEventListeners(signal, "abort").length, 0, "a caller's signal is still listened to");
      }
      assert.equal(client.stats().inFlight, 0, "slots held after close()");
      assert.equal(client.stats().queued, 0, "calls waiting after close()");
      assert.deepEqual(client.stats().errors, { BRIDGE_ERR_ENGINE_CANCELLED: 9 }, "every call is counted by then");
      for (const { what, ended } of calls) {
        const err = await ended;
        assert.equal(err.code, "BRIDGE_ERR_ENGINE_CANCELLED", what);
      }
      // The consumer that stopped reading hears of the close at its next read.
      const late = await failure(stopped.next(), "the stopped stream");
      assert.equal(late.code, "BRIDGE_ERR_ENGINE_CANCELLED");
      assert.deepEqual(client.stats().errors, { BRIDGE_ERR_ENGINE_CANCELLED: 9 }, "counted once, at close()");
      assert.equal(clock.pending, 0);
      await waitFor(() => engine.gone() === 7, "the engine to see every held request's connection close");
      // A call's other parts hang off these two (each count is a heap walk: two are enough).
      for (const [name, ctor] of [
        ["RequestContext", RequestContext],
        ["StreamedCall", StreamedCall],
      ] as const) {
        assert.equal(queryObjects(ctor, { format: "count" }), 0, `${name} objects alive`);
      }
    } finally {
      await client.close();
      await engine.close();
    }
  });

  test("on the system clock, leaves no timer keeping the process alive for a stream its consumer stopped reading", async () => {
    const engine = await startHoldingEngine();
    // Timers only: the engine's and the client's sockets are the test's to close.
    const timers = () => process.getActiveResourcesInfo().filter((type) => type === "Timeout").length;
    const before = timers();
    const client = createEngineClient({ urls: [engine.url], model: "m" });
    try {
      const stopped = client.stream(ask("hold-stream"), { agentId: "a", timeoutMs: BUDGET_MS })[Symbol.asyncIterator]();
      assert.equal((await stopped.next()).done, false);
      assert.equal(timers(), before + 1, "the deadline keeps the process alive while the call runs");
      await client.close();
      assert.equal(timers(), before, "a timer keeps the process alive after close()");
      assert.equal((await failure(stopped.next(), "the stopped stream")).code, "BRIDGE_ERR_ENGINE_CANCELLED");
    } finally {
      await client.close();
      await engine.close();
    }
  });
});
