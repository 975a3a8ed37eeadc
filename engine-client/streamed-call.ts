/**
 * One streamed chat call as `stream` and `streamBatches` drive it: started at once when it can be (`start`), opened
 * (admission, retries) by the first `next()`, then read a batch of events at a time, with the client's bookkeeping
 * done as each batch passes: the first-token notice, and at `done` the slot released, the replica's success and the
 * completion recorded.
 */
import type { ChatRequest, ChatStreamEvent, ChatUsage } from "../agents/engine.ts";
import { BridgeError } from "../errors/index.ts";
import { ConsumerWatchdog } from "./consumer-watchdog.ts";
import { CONSUMER_IDLE_REASON, ENGINE_ERROR_CODES, engineError } from "./errors.ts";
import { notify } from "./observer.ts";
import type { EngineClientOptions } from "./options.ts";
import type { Replica } from "./replica.ts";
import type { RequestContext } from "./request-context.ts";
import type { Admission } from "./admission.ts";
import { Attempted, type FailedAttempt, attemptRequestId, withAttempts } from "./retry-loop.ts";
import { type OpenedStream, openStream } from "./stream-dispatch.ts";
import { ChatStreamReader } from "./stream-reader.ts";
import { encodeChatBody } from "./chat-body.ts";

/** What a streamed call needs from its client. */
export interface StreamedCallHost {
  readonly options: EngineClientOptions;
  /** Which replica a call runs on, and when. */
  readonly admission: Admission;
  /** Counts a retry. */
  readonly countRetry: () => void;
  /** The model to name in the request body: a value when known now, a promise when it must be looked up. */
  model(request: ChatRequest, ctx: RequestContext): string | undefined | Promise<string | undefined>;
  recordDone(
    ctx: RequestContext,
    replica: string,
    usage: ChatUsage,
    finishReason: string,
    firstTokenAt: number | undefined,
  ): void;
  /** Counts and classifies a failure; returns the error to throw. */
  fail(ctx: RequestContext, replica: string | undefined, raw: unknown): BridgeError;
  /** Disposes the request's context once the call is over. */
  end(ctx: RequestContext): void;
}

export class StreamedCall {
  #replica: Replica | undefined;
  #opened: OpenedStream | undefined;
  #reader: ChatStreamReader | undefined;
  /** The admission slot, given back at `done` or at close. */
  #slot: Attempted<OpenedStream> | undefined;
  #finished = false;
  #firstTokenAt: number | undefined;
  /** Ends the call when its consumer stops reading without closing it (consumer-watchdog.ts). */
  #watchdog: ConsumerWatchdog | undefined;
  /** Set when the call was ended from outside (its watchdog, the client's close): what a consumer then gets. */
  #cancelled: BridgeError | undefined;
  /** The request body, once `start` encoded it. */
  #body: string | undefined;
  /** The model lookup `start` found the call must wait for. */
  #lookup: Promise<string | undefined> | undefined;
  /** Why `start` could not encode the body: the call fails with it. */
  #fault: unknown;
  /** Attempt 1, when `start` sent it: its first chunk, or why it failed. */
  #sent: Promise<OpenedStream> | undefined;
  /** Where `start` sent attempt 1 (its admission slot is held). */
  #sentTo: Replica | undefined;

  constructor(
    private readonly host: StreamedCallHost,
    private readonly ctx: RequestContext,
    private readonly request: ChatRequest,
  ) {}

  /** The request went out and its answer began: from here on only the consumer's reads (or close) end the call. */
  get opened(): boolean {
    return this.#reader !== undefined;
  }

  /** The next batch of events (opening the call first); `[]` after the batch that held `done`. */
  async next(): Promise<ChatStreamEvent[]> {
    if (this.#cancelled !== undefined) throw this.#cancelled;
    this.#reader ??= await this.#open();
    const events = await this.#reader.next();
    // Ended while this read waited (a drain after [DONE] still returns the answer's last events): it stays ended.
    if (this.#cancelled !== undefined) throw this.#cancelled;
    const { ctx, host } = this;
    const key = this.#replica?.key ?? "";
    for (const event of events) {
      if (event.type === "done") {
        this.#finished = true;
        this.#watchdog?.stop();
        // The slot goes back before the caller sees `done`, so its next request can be admitted at once.
        this.#slot?.release();
        this.#replica?.recordSuccess();
        host.recordDone(ctx, key, event.usage, event.finishReason, this.#firstTokenAt);
        // The call is over at `done` (always the last event), also for a caller that stops there without asking
        // `stream()` for the end of its iteration: its generator stays suspended after yielding `done`, and `close()`
        // would never run. The request's context goes now: its deadline timer (which keeps the process alive), its
        // listener on the caller's signal, its place among the client's running requests. close() ends it again.
        host.end(ctx);
      } else if (this.#firstTokenAt === undefined) {
        this.#firstTokenAt = host.options.clock.monotonicNow();
        notify(host.options.observer, "onFirstToken", {
          agentId: ctx.agentId,
          replica: key,
          ttftMs: this.#firstTokenAt - ctx.startedAt,
        });
      }
    }
    return events;
  }

  /** Counts and classifies a failure of the call; returns the error to throw. */
  fail(err: unknown): BridgeError {
    // Counted when the call was ended from outside; a consumer that comes back only hears of it.
    if (this.#cancelled !== undefined && err === this.#cancelled) return this.#cancelled;
    // A replica whose streams break is as unhealthy as one that refuses them: it counts towards its cooldown.
    if (!this.ctx.aborted && err instanceof BridgeError && err.code === ENGINE_ERROR_CODES.streamBroken) {
      this.#replica?.recordFailure();
    }
    return this.host.fail(this.ctx, this.#replica?.key, err);
  }

  /**
   * Ends the call: an unfinished body is destroyed (closing the socket, so the engine sees the disconnect and frees
   * the sequence's batch slot and KV blocks), the slot goes back, the context is disposed.
   */
  close(): void {
    this.#watchdog?.stop();
    this.#reader?.close();
    if (!this.#finished) this.#opened?.abort(new Error("the engine stream was closed before its end"));
    this.#slot?.release();
    this.host.end(this.ctx);
  }

  /**
   * Ends the call now, whether or not its consumer is reading: the request aborted with `reason` (unless it was
   * already), the failure counted now, the call closed, and a consumer that comes back (or is waiting) gets the
   * error. For an opened call whose consumer may never read again, which nothing else would end.
   */
  cancel(reason: BridgeError): void {
    if (this.#cancelled !== undefined || this.#finished) return;
    this.ctx.abort(reason);
    this.#cancelled = this.host.fail(this.ctx, this.#replica?.key, reason);
    this.close();
  }

  /**
   * The consumer left the answer unread for `consumerIdleTimeoutMs`: it dropped the stream without closing it, or
   * stalled. Nobody else would end the call, so it is ended here: the request aborted (the engine frees the
   * sequence), the slot given back, the failure counted now, and a consumer that comes back gets the error.
   */
  #abandon(idleMs: number): void {
    const timeoutMs = this.host.options.consumerIdleTimeoutMs;
    this.cancel(
      engineError(
        ENGINE_ERROR_CODES.cancelled,
        `the engine stream was left unread for ${idleMs} ms (consumerIdleTimeoutMs ${timeoutMs}); it was aborted to free its slot`,
        { reason: CONSUMER_IDLE_REASON, idleMs, consumerIdleTimeoutMs: timeoutMs },
      ),
    );
  }

  /**
   * Sends the call now if it can go without waiting: the model known, a slot free and nobody queued for one (the
   * common call). Nothing here makes or waits on a promise, so a caller that starts the call inside an agent's event
   * has it handed to undici's pool in that same turn, which writes it to a reused idle connection on the loop's check
   * phase, after whatever that turn still does synchronously; work that need not come first waits for the write
   * (agents/device/reasoning/after-request-write.ts). Anything else (a model lookup, a full engine, a closed client,
   * bad input) is left to the first `next()`, which opens the call through the retry loop; called once, right after
   * the call is made. True when it sent the call: `reportDispatch` then tells the observer, after the write.
   */
  start(): boolean {
    const { ctx, host, request } = this;
    if (ctx.aborted) return false;
    const named = host.model(request, ctx);
    if (named instanceof Promise) {
      this.#lookup = named;
      return false;
    }
    let body: string;
    try {
      body = encodeChatBody(request, named, true);
    } catch (err) {
      this.#fault = err;
      return false;
    }
    this.#body = body;
    const replica = host.admission.admitNow(ctx.agentId);
    if (replica === undefined) return false;
    this.#sentTo = replica;
    try {
      this.#sent = openStream(replica, host.options, { body, requestId: ctx.requestId, request: ctx });
    } catch (err) {
      // As the retry loop takes an attempt that throws: a failed attempt.
      this.#sent = Promise.reject(err);
    }
    return true;
  }

  /** Reports attempt 1 that `start` sent, admitted without waiting in the queue: its slot, then its dispatch. */
  reportDispatch(): void {
    const replica = this.#sentTo;
    if (replica === undefined) return;
    // The count as it is now: a request that already ended has been counted out, and the gauge shows that.
    this.host.admission.reportInFlight(replica);
    notify(this.host.options.observer, "onDispatch", {
      agentId: this.ctx.agentId,
      replica: replica.key,
      queueWaitMs: 0,
      attempt: 1,
    });
  }

  /** Opens the call: waits for attempt 1 when `start` sent it (retrying it as the loop would), else runs the loop. */
  async #open(): Promise<ChatStreamReader> {
    const { ctx, host } = this;
    const sent = this.#sent;
    const sentTo = this.#sentTo;
    let attempt: Attempted<OpenedStream>;
    if (sent === undefined || sentTo === undefined) attempt = await this.#attempts(undefined);
    else {
      try {
        attempt = new Attempted(await sent, sentTo, host.admission);
      } catch (error) {
        attempt = await this.#attempts({ replica: sentTo, error });
      }
    }
    this.#opened = attempt.value;
    this.#slot = attempt;
    this.#replica = attempt.replica;
    this.#watchdog = new ConsumerWatchdog(host.options.clock, host.options.consumerIdleTimeoutMs, (idleMs) =>
      this.#abandon(idleMs),
    );
    attempt.value.feed.watchConsumer(this.#watchdog);
    return new ChatStreamReader(attempt.value, {
      replica: attempt.replica.key,
      apiKey: host.options.apiKey,
      request: ctx,
      clock: host.options.clock,
    });
  }

  /**
   * The call through the retry loop (admission, retries before the first byte): what `start` could not send, or, with
   * `failed`, what follows its failed attempt 1.
   */
  async #attempts(failed: FailedAttempt | undefined): Promise<Attempted<OpenedStream>> {
    const { ctx, host, request } = this;
    if (this.#fault !== undefined) throw this.#fault;
    let body = this.#body;
    if (body === undefined) {
      const named = this.#lookup ?? host.model(request, ctx);
      body = encodeChatBody(request, named instanceof Promise ? await named : named, true);
    }
    const encoded = body;
    return withAttempts(
      ctx,
      host.admission,
      host.options,
      host.countRetry,
      (replica, n) =>
        openStream(replica, host.options, {
          body: encoded,
          requestId: attemptRequestId(ctx.requestId, n),
          request: ctx,
        }),
      failed,
    );
  }
}
