/**
 * One streamed completion sent through undici's `dispatch` with a handler of its own, not through `request`: the
 * body's reads go from undici's parser straight into a BodyFeed (no node:stream Readable per request, whose per-read
 * machinery was a fifth of the bridge's busy time at one device, issue #5), and the request's abort has one listener,
 * this handler, instead of undici's plus ours (on the request context itself, not an AbortSignal: request-context.ts).
 *
 * Everything that can go wrong before the first byte of the answer becomes a BridgeError here, as in http.ts: a
 * network error is UNAVAILABLE, a non-2xx status is classified by `statusError` (its body read within
 * MAX_ERROR_BODY_BYTES and ERROR_BODY_TIMEOUT_MS on the client's clock, then the connection dropped), an empty stream
 * or one dropped before its first byte is UNAVAILABLE, and an aborted request rejects with the abort's reason (a
 * deadline that passed before the headers also has the replica's health probed). After the first byte, failures
 * reach the reader through the feed.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { Dispatcher } from "undici";
import { BodyFeed } from "./body-feed.ts";
import type { TimerHandle } from "./clock.ts";
import { ENGINE_ERROR_CODES, engineError, isDeadlineExpiry } from "./errors.ts";
import { networkFailure } from "./http.ts";
import type { EngineClientOptions } from "./options.ts";
import type { Replica } from "./replica.ts";
import type { AbortListener, AbortSource } from "./request-context.ts";
import { ERROR_BODY_TIMEOUT_MS, MAX_ERROR_BODY_BYTES, statusError } from "./status-error.ts";

/** A 200 response whose first body chunk has arrived: from here on, nothing is retried. */
export interface OpenedStream {
  /** The body's reads after the first. */
  readonly feed: BodyFeed;
  /** The first read: taken at once, so nothing waits unread when the consumer's watchdog starts. */
  readonly firstChunks: Buffer[];
  /**
   * Ends the request if it is still running: its socket is closed, so the engine sees the disconnect and frees the
   * sequence's batch slot and KV blocks. Nothing once the body ended.
   */
  abort(reason: Error): void;
}

/** What the request needs besides the replica. */
export interface StreamInit {
  /** The JSON body. */
  body: string;
  requestId: string;
  /** The request's abort (its context). */
  request: AbortSource;
}

/**
 * Sends a streamed completion to `replica` and resolves once its first body chunk arrived. The request is handed to
 * the pool before any promise is made (the handler makes its own when asked, after the dispatch).
 */
export function openStream(replica: Replica, options: EngineClientOptions, init: StreamInit): Promise<OpenedStream> {
  const { request } = init;
  if (request.aborted) return Promise.reject(request.reason);
  replica.attempts++;
  const handler = new StreamHandler(replica, options, request);
  replica.pool.dispatch(
    { method: "POST", path: replica.chatPath, headers: replica.headers(init.requestId), body: init.body },
    handler,
  );
  return handler.opened;
}

/** The error body of a non-2xx answer, while it is read. */
interface ErrorBody {
  status: number;
  headers: IncomingHttpHeaders;
  parts: Buffer[];
  bytes: number;
  timer: TimerHandle;
}

type Controller = Dispatcher.DispatchController;

/**
 * undici's handler for one streamed completion, and the request's abort listener (`onAbort`). Settles `opened`
 * once: with the stream at its first chunk, or with the classified error of the attempt.
 */
export class StreamHandler implements Dispatcher.DispatchHandler, AbortListener, OpenedStream {
  firstChunks: Buffer[] = [];
  /** Made on first use of `opened`, which may come after the attempt settled (undici fails some dispatches at once). */
  #opened: Promise<OpenedStream> | undefined;
  #resolve: ((opened: OpenedStream) => void) | undefined;
  #reject: ((err: unknown) => void) | undefined;
  #settled = false;
  /** Why the attempt failed, once it has, for an `opened` made after that. */
  #failure: { error: unknown } | undefined;
  /** Set by undici when the request is written; undefined while it waits for a connection. */
  #controller: Controller | undefined;
  /** Set at a 2xx status. */
  #feed: BodyFeed | undefined;
  /** Set at any other status, while its body is read. */
  #errorBody: ErrorBody | undefined;
  /** The request ended (completed, failed or aborted): its abort is no longer listened to. */
  #over = false;

  constructor(
    private readonly replica: Replica,
    private readonly options: EngineClientOptions,
    private readonly request: AbortSource,
  ) {
    request.listen(this);
  }

  /**
   * Settles once: with the stream at its first chunk, or with the attempt's classified error. Made when first asked
   * for, not with the handler: a call that can go at once reaches the pool before any promise is made (issue #5).
   */
  get opened(): Promise<OpenedStream> {
    if (this.#opened === undefined) {
      const failure = this.#failure;
      this.#opened = !this.#settled
        ? new Promise<OpenedStream>((resolve, reject) => {
            this.#resolve = resolve;
            this.#reject = reject;
          })
        : failure === undefined
          ? Promise.resolve(this)
          : Promise.reject(failure.error);
    }
    return this.#opened;
  }

  get feed(): BodyFeed {
    // Only handed out (as OpenedStream) once the feed exists.
    return this.#feed as BodyFeed;
  }

  abort(reason: Error): void {
    if (!this.#over) this.#controller?.abort(reason);
  }

  /** The request was aborted: the deadline passed, the caller cancelled, or the client closed. */
  onAbort(reason: unknown): void {
    if (this.#over) return;
    // Synchronously ends in onResponseError below, which settles what is still open. A request still waiting for a
    // connection has no controller yet: it is settled here and aborted by onRequestStart once it gets one.
    this.#controller?.abort(asError(reason));
    if (!this.#settled) this.#rejectAborted();
  }

  onRequestStart(controller: Controller): void {
    this.#controller = controller;
    if (this.request.aborted) controller.abort(asError(this.request.reason));
  }

  onResponseStart(controller: Controller, statusCode: number, headers: IncomingHttpHeaders): void {
    // 1xx: informational, the answer follows.
    if (statusCode < 200) return;
    if (statusCode < 300) {
      this.#feed = new BodyFeed(controller);
      return;
    }
    const timer = this.options.clock.setTimeout(() => this.#endErrorBody(true), ERROR_BODY_TIMEOUT_MS);
    this.#errorBody = { status: statusCode, headers, parts: [], bytes: 0, timer };
  }

  onResponseData(_controller: Controller, chunk: Buffer): void {
    const feed = this.#feed;
    if (feed !== undefined) {
      if (this.#settled) {
        feed.push(chunk);
        return;
      }
      this.#settled = true;
      this.firstChunks = [chunk];
      this.#resolve?.(this);
      return;
    }
    const error = this.#errorBody;
    if (error === undefined || this.#settled) return;
    const room = MAX_ERROR_BODY_BYTES - error.bytes;
    if (chunk.length > room) {
      // The rest is never read: the connection is dropped (an endless body never ends).
      error.parts.push(chunk.subarray(0, room));
      this.#endErrorBody(true);
      return;
    }
    error.parts.push(chunk);
    error.bytes += chunk.length;
  }

  onResponseEnd(_controller: Controller, _trailers: IncomingHttpHeaders): void {
    this.#finish();
    if (this.#feed !== undefined) {
      this.#feed.end();
      if (!this.#settled) {
        this.#failOpen(
          engineError(ENGINE_ERROR_CODES.unavailable, `engine replica ${this.replica.key} sent an empty stream`, {
            replica: this.replica.key,
          }),
        );
      }
    } else if (this.#errorBody !== undefined) this.#endErrorBody(false);
  }

  onResponseError(_controller: Controller | undefined, err: Error): void {
    this.#finish();
    this.#feed?.fail(err);
    if (this.#settled) return;
    if (this.request.aborted) {
      this.#rejectAborted();
    } else if (this.#errorBody !== undefined) {
      // A read that failed keeps none of the body: the status alone classifies.
      this.#errorBody.parts = [];
      this.#endErrorBody(false);
    } else {
      // A 2xx whose body failed before its first byte, or no answer at all.
      const what = this.#feed !== undefined ? "dropped the stream before its first byte" : "could not be reached";
      this.#failOpen(networkFailure(this.replica, what, err, this.options.apiKey));
    }
  }

  /** Rejects with the abort's reason. */
  #rejectAborted(): void {
    // A deadline that passed with no headers yet: a hung replica, or only a busy one. Not a failure by itself; the
    // replica's health is probed and a failed probe counts. A caller's own cancellation says nothing about the replica.
    if (this.#feed === undefined && this.#errorBody === undefined && isDeadlineExpiry(this.request.reason)) {
      this.replica.suspectStall();
    }
    this.#failOpen(this.request.reason);
  }

  /**
   * Classifies the answer with the error body read so far; with `drop`, the request is then aborted (a body over its
   * bound in bytes or in time: the connection is closed rather than the rest read).
   */
  #endErrorBody(drop: boolean): void {
    const error = this.#errorBody;
    if (error === undefined || this.#settled) return;
    this.options.clock.clearTimeout(error.timer);
    const text = Buffer.concat(error.parts).toString("utf8");
    this.#failOpen(statusError(this.replica, this.options, error.status, error.headers, text));
    if (drop) this.abort(new Error("the error body was cut at its bound"));
  }

  /** Rejects `opened` with `err`, once. */
  #failOpen(err: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    if (this.#errorBody !== undefined) this.options.clock.clearTimeout(this.#errorBody.timer);
    this.#failure = { error: err };
    this.#reject?.(err);
  }

  /** The request is over: its abort is not listened to any more. */
  #finish(): void {
    if (this.#over) return;
    this.#over = true;
    this.request.unlisten(this);
  }
}

/** An abort's reason as undici's controller takes it (the client's reasons are BridgeErrors already). */
function asError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason));
}
