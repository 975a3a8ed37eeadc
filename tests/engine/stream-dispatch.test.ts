/**
 * The streamed completion's undici handler, driven by hand as undici drives it (onRequestStart, onResponseStart,
 * onResponseData, onResponseEnd / onResponseError) with a controller that records what the handler asked of it:
 * what `opened` settles with, back-pressure, aborts before and after the headers, the error body's bounds.
 */
import assert from "node:assert/strict";
import type { IncomingHttpHeaders } from "node:http";
import { after, describe, test } from "node:test";
import type { Dispatcher } from "undici";
import { PAUSE_ABOVE_BYTES } from "../../engine-client/body-feed.ts";
import { ENGINE_ERROR_CODES, engineError } from "../../engine-client/errors.ts";
import { resolveEngineClientOptions } from "../../engine-client/options.ts";
import { Replica } from "../../engine-client/replica.ts";
import { RequestContext } from "../../engine-client/request-context.ts";
import { ERROR_BODY_TIMEOUT_MS, MAX_ERROR_BODY_BYTES } from "../../engine-client/status-error.ts";
import { type OpenedStream, StreamHandler } from "../../engine-client/stream-dispatch.ts";
import { BridgeError } from "../../errors/index.ts";
import { ManualClock } from "../support/manual-clock.ts";

/** A dispatch controller as undici's: an abort ends the request at once, in onResponseError. */
class RecordingController implements Dispatcher.DispatchController {
  aborts: Error[] = [];
  pauses = 0;
  resumes = 0;
  #paused = false;
  #handler: StreamHandler | undefined;

  attach(handler: StreamHandler): this {
    this.#handler = handler;
    handler.onRequestStart(this);
    return this;
  }
  get aborted() {
    return this.aborts.length > 0;
  }
  get paused() {
    return this.#paused;
  }
  get reason() {
    return this.aborts[0] ?? null;
  }
  abort(reason: Error): void {
    if (this.aborted) return;
    this.aborts.push(reason);
    this.#handler?.onResponseError(this, reason);
  }
  pause(): void {
    this.#paused = true;
    this.pauses++;
  }
  resume(): void {
    this.#paused = false;
    this.resumes++;
  }
}

const clock = new ManualClock();
const options = resolveEngineClientOptions({ urls: ["http://127.0.0.1:9"], clock, apiKey: "sk-test-0123456789" });
const replica = new Replica("http://127.0.0.1:9", options, () => {});
let stalls = 0;
replica.suspectStall = () => {
  stalls++;
};
after(() => replica.close());

/** A handler for a fresh request, written (a controller attached) unless `connected` is false. */
function started(connected = true) {
  const request = new RequestContext({ agentId: "dev-1" }, "bridge-test", clock);
  const handler = new StreamHandler(replica, options, request);
  const controller = new RecordingController();
  if (connected) controller.attach(handler);
  const outcome = settled(handler.opened);
  return { request, handler, controller, outcome };
}

/** What a promise settled with, without leaving a rejection unhandled. */
function settled(promise: Promise<OpenedStream>) {
  const state: { value?: OpenedStream; error?: unknown; done: boolean } = { done: false };
  const whenDone = promise.then(
    (value) => Object.assign(state, { value, done: true }),
    (error: unknown) => Object.assign(state, { error, done: true }),
  );
  return { state, whenDone };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));
const noHeaders: IncomingHttpHeaders = {};
const deadlineError = () => engineError(ENGINE_ERROR_CODES.timeout, "engine request passed its deadline");

describe("the streamed completion's dispatch handler", () => {
  test("opens at the first body chunk, with the later ones in the feed, and ends with the body", async () => {
    const { handler, controller, outcome } = started();
    handler.onResponseStart(controller, 100, noHeaders);
    handler.onResponseStart(controller, 200, { "content-type": "text/event-stream" });
    await tick();
    assert.equal(outcome.state.done, false, "not at the headers");
    handler.onResponseData(controller, Buffer.from("a"));
    handler.onResponseData(controller, Buffer.from("b"));
    handler.onResponseEnd(controller, {});
    await outcome.whenDone;
    const opened = outcome.state.value as OpenedStream;
    assert.equal(Buffer.concat(opened.firstChunks).toString(), "a");
    assert.equal(Buffer.concat((await opened.feed.take()) ?? []).toString(), "b");
    assert.equal(await opened.feed.take(), null);
    opened.abort(new Error("closed after the end"));
    assert.deepEqual(controller.aborts, [], "a finished request is not aborted");
  });

  test("a body the consumer leaves unread pauses the request above PAUSE_ABOVE_BYTES and resumes it when taken", async () => {
    const { handler, controller, outcome } = started();
    handler.onResponseStart(controller, 200, noHeaders);
    handler.onResponseData(controller, Buffer.from("first"));
    const half = Buffer.alloc(PAUSE_ABOVE_BYTES / 2 + 1);
    handler.onResponseData(controller, half);
    assert.equal(controller.paused, false);
    handler.onResponseData(controller, half);
    assert.equal(controller.paused, true, "undici stops reading the socket while paused");
    await outcome.whenDone;
    const taken = await (outcome.state.value as OpenedStream).feed.take();
    assert.equal(taken?.length, 2);
    assert.equal(controller.paused, false);
    assert.deepEqual([controller.pauses, controller.resumes], [1, 1]);
  });

  test("a deadline before the headers aborts the request, rejects with its reason and has the replica probed", async () => {
    const before = stalls;
    const { request, controller, outcome } = started();
    const reason = deadlineError();
    request.abort(reason);
    await outcome.whenDone;
    assert.equal(outcome.state.error, reason);
    assert.deepEqual(controller.aborts, [reason], "the request is aborted with the reason");
    assert.equal(stalls - before, 1);
  });

  test("a caller's abort while the request waits for a connection settles at once and aborts it once connected", async () => {
    const before = stalls;
    const { request, handler, outcome } = started(false);
    const reason = engineError(ENGINE_ERROR_CODES.cancelled, "engine request was cancelled by its caller");
    request.abort(reason);
    await outcome.whenDone;
    assert.equal(outcome.state.error, reason);
    assert.equal(stalls - before, 0, "a caller's cancellation says nothing about the replica");
    const controller = new RecordingController().attach(handler);
    assert.deepEqual(controller.aborts, [reason], "never written: aborted as soon as undici starts it");
  });

  test("an abort after the first chunk aborts the request and fails the feed with the reason after what was read", async () => {
    const { request, handler, controller, outcome } = started();
    handler.onResponseStart(controller, 200, noHeaders);
    handler.onResponseData(controller, Buffer.from("first"));
    handler.onResponseData(controller, Buffer.from("second"));
    await outcome.whenDone;
    const opened = outcome.state.value as OpenedStream;
    const reason = engineError(ENGINE_ERROR_CODES.cancelled, "engine request was cancelled by its caller");
    request.abort(reason);
    assert.deepEqual(controller.aborts, [reason]);
    assert.equal(Buffer.concat((await opened.feed.take()) ?? []).toString(), "second");
    await assert.rejects(opened.feed.take(), (err: unknown) => err === reason);
  });

  test("closing an opened stream aborts its request (the engine sees the disconnect); its abort is no longer heard", async () => {
    const { request, handler, controller, outcome } = started();
    handler.onResponseStart(controller, 200, noHeaders);
    handler.onResponseData(controller, Buffer.from("first"));
    await outcome.whenDone;
    const closing = new Error("closed before the end");
    (outcome.state.value as OpenedStream).abort(closing);
    assert.deepEqual(controller.aborts, [closing]);
    request.abort(deadlineError());
    assert.equal(controller.aborts.length, 1, "the listener went with the request");
  });

  test("a drop mid-body fails the feed with the network error; one before the first byte is UNAVAILABLE", async () => {
    const mid = started();
    mid.handler.onResponseStart(mid.controller, 200, noHeaders);
    mid.handler.onResponseData(mid.controller, Buffer.from("first"));
    const reset = Object.assign(new Error("other side closed"), { code: "UND_ERR_SOCKET" });
    mid.handler.onResponseError(mid.controller, reset);
    await mid.outcome.whenDone;
    await assert.rejects((mid.outcome.state.value as OpenedStream).feed.take(), (err: unknown) => err === reset);

    const early = started();
    early.handler.onResponseStart(early.controller, 200, noHeaders);
    early.handler.onResponseError(early.controller, reset);
    await early.outcome.whenDone;
    const error = early.outcome.state.error;
    assert.ok(error instanceof BridgeError);
    assert.equal(error.code, "BRIDGE_ERR_ENGINE_UNAVAILABLE");
    assert.match(error.message, /dropped the stream before its first byte: UND_ERR_SOCKET other side closed/);
  });

  test("an empty stream and a network error before the headers are UNAVAILABLE", async () => {
    const empty = started();
    empty.handler.onResponseStart(empty.controller, 200, noHeaders);
    empty.handler.onResponseEnd(empty.controller, {});
    await empty.outcome.whenDone;
    assert.match(String((empty.outcome.state.error as BridgeError).message), /sent an empty stream/);

    const refused = started(false);
    const econnrefused = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    // undici reports a failed connection without starting the request.
    refused.handler.onResponseError(undefined, econnrefused);
    await refused.outcome.whenDone;
    const error = refused.outcome.state.error as BridgeError;
    assert.equal(error.code, "BRIDGE_ERR_ENGINE_UNAVAILABLE");
    assert.match(error.message, /could not be reached: ECONNREFUSED connect ECONNREFUSED/);
  });

  test("`opened` first asked for after the attempt settled (undici fails some dispatches inside the call) says how", async () => {
    // The handler makes its promise when asked, after the dispatch: an attempt may settle before that.
    const request = new RequestContext({ agentId: "dev-1" }, "bridge-test", clock);
    const failed = new StreamHandler(replica, options, request);
    failed.onResponseError(undefined, Object.assign(new Error("the pool is closed"), { code: "UND_ERR_DESTROYED" }));
    const error = await failed.opened.then(
      () => assert.fail("a failed attempt opened"),
      (err: unknown) => err,
    );
    assert.ok(error instanceof BridgeError);
    assert.equal(error.code, "BRIDGE_ERR_ENGINE_UNAVAILABLE");
    assert.match(error.message, /could not be reached: UND_ERR_DESTROYED the pool is closed/);
    assert.equal(failed.opened, failed.opened, "one promise, however often asked");

    const early = new StreamHandler(replica, options, request);
    const controller = new RecordingController().attach(early);
    early.onResponseStart(controller, 200, noHeaders);
    early.onResponseData(controller, Buffer.from("first"));
    const opened = await early.opened;
    assert.equal(opened, early);
    assert.equal(Buffer.concat(opened.firstChunks).toString(), "first");
    opened.abort(new Error("the test is over"));
  });

  test("a non-2xx answer is classified with its body's words and Retry-After", async () => {
    const { handler, controller, outcome } = started();
    handler.onResponseStart(controller, 503, { "retry-after": "2" });
    handler.onResponseData(controller, Buffer.from('{"error":{"message":"too many'));
    handler.onResponseData(controller, Buffer.from(' requests","type":"overloaded"}}'));
    handler.onResponseEnd(controller, {});
    await outcome.whenDone;
    const error = outcome.state.error as BridgeError;
    assert.equal(error.code, "BRIDGE_ERR_ENGINE_OVERLOADED");
    assert.equal(error.details.retryAfter, "2");
    assert.match(error.message, /answered 503: too many requests/);
    assert.deepEqual(controller.aborts, [], "a body read to its end keeps the connection");
    assert.equal(clock.pending, 0, "the body's timer is cleared");
  });

  test("an error body is read up to MAX_ERROR_BODY_BYTES, then the connection is dropped", async () => {
    // The refusal's words sit just past the bound: never read, so never seen.
    const words = "maximum context length";
    const exact = started();
    exact.handler.onResponseStart(exact.controller, 400, noHeaders);
    exact.handler.onResponseData(exact.controller, Buffer.alloc(MAX_ERROR_BODY_BYTES - words.length, 0x20));
    exact.handler.onResponseData(exact.controller, Buffer.from(words));
    exact.handler.onResponseEnd(exact.controller, {});
    await exact.outcome.whenDone;
    assert.equal((exact.outcome.state.error as BridgeError).details.reason, "context-length");
    assert.deepEqual(exact.controller.aborts, [], "a body of exactly the bound is read to its end");

    const over = started();
    over.handler.onResponseStart(over.controller, 400, noHeaders);
    over.handler.onResponseData(over.controller, Buffer.alloc(MAX_ERROR_BODY_BYTES - 1, 0x20));
    over.handler.onResponseData(over.controller, Buffer.from(words));
    await over.outcome.whenDone;
    const error = over.outcome.state.error as BridgeError;
    assert.equal(error.code, "BRIDGE_ERR_ENGINE_BAD_REQUEST");
    assert.equal(error.details.reason, undefined, "the words past the bound were not read");
    assert.equal(over.controller.aborts.length, 1, "the connection is dropped");
    assert.equal(clock.pending, 0);
  });

  test("an error body that stalls is cut after ERROR_BODY_TIMEOUT_MS of the client's clock, with what it sent", async () => {
    const { handler, controller, outcome } = started();
    handler.onResponseStart(controller, 502, noHeaders);
    handler.onResponseData(controller, Buffer.from("bad gateway"));
    assert.equal(clock.pending, 1);
    clock.advanceSync(ERROR_BODY_TIMEOUT_MS - 1);
    await tick();
    assert.equal(outcome.state.done, false, "not before its bound");
    clock.advanceSync(1);
    await outcome.whenDone;
    const error = outcome.state.error as BridgeError;
    assert.equal(error.code, "BRIDGE_ERR_ENGINE_UNAVAILABLE");
    assert.match(error.message, /answered 502: bad gateway/);
    assert.equal(controller.aborts.length, 1, "the stalled connection is dropped");
  });

  test("an error body that fails keeps none of its words; one aborted by its request rejects with the reason", async () => {
    const failed = started();
    failed.handler.onResponseStart(failed.controller, 500, noHeaders);
    failed.handler.onResponseData(failed.controller, Buffer.from("half of"));
    failed.handler.onResponseError(failed.controller, new Error("other side closed"));
    await failed.outcome.whenDone;
    assert.equal((failed.outcome.state.error as BridgeError).message, "engine replica http://127.0.0.1:9 answered 500");

    const aborted = started();
    aborted.handler.onResponseStart(aborted.controller, 500, noHeaders);
    const reason = deadlineError();
    const before = stalls;
    aborted.request.abort(reason);
    await aborted.outcome.whenDone;
    assert.equal(aborted.outcome.state.error, reason);
    assert.equal(stalls, before, "the replica answered: nothing to probe");
    assert.equal(clock.pending, 0);
  });
});
