/**
 * One streamed chat call as `stream` and `streamBatches` drive it: opened (admission, retries) on the first
 * `next()`, then read a batch of events at a time, with the client's bookkeeping done as each batch passes: the
 * first-token notice, and at `done` the slot released, the replica's success and the completion recorded.
 */
import type { ChatRequest, ChatStreamEvent, ChatUsage } from "../agents/engine.ts";
import { BridgeError } from "../errors/index.ts";
import { ConsumerWatchdog } from "./consumer-watchdog.ts";
import { CONSUMER_IDLE_REASON, ENGINE_ERROR_CODES, engineError } from "./errors.ts";
import { notify } from "./observer.ts";
import type { EngineClientOptions } from "./options.ts";
import type { Replica } from "./replica.ts";
import type { RequestContext } from "./request-context.ts";
import { type Attempted, attemptRequestId } from "./retry-loop.ts";
import { type OpenedStream, openStream } from "./stream-dispatch.ts";
import { ChatStreamReader } from "./stream-reader.ts";
import { encodeChatBody } from "./chat-body.ts";

/** What a streamed call needs from its client. */
export interface StreamedCallHost {
  readonly options: EngineClientOptions;
  /** The model to name in the request body: a value when known now, a promise when it must be looked up. */
  model(request: ChatRequest, ctx: RequestContext): string | undefined | Promise<string | undefined>;
  /** Runs one attempt loop (admission, retries before the first byte) around `attempt`. */
  attempts<T>(ctx: RequestContext, attempt: (replica: Replica, n: number) => Promise<T>): Promise<Attempted<T>>;
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
        this.#firstTokenAt = host.options.clock.now();
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
   * Opens the call. Nothing here waits unless it must (a model lookup, a full engine, a retry), so a caller that
   * starts the call inside an agent's event has it dispatched in that same turn. undici writes it to a reused idle
   * connection on the loop's check phase, after whatever that turn still does synchronously; work that need not come
   * first waits for the write (agents/device/reasoning/after-request-write.ts).
   */
  async #open(): Promise<ChatStreamReader> {
    const { ctx, host, request } = this;
    const named = host.model(request, ctx);
    const model = named instanceof Promise ? await named : named;
    const body = encodeChatBody(request, model, true);
    const attempt = await host.attempts(ctx, (replica, n) =>
      openStream(replica, host.options, { body, requestId: attemptRequestId(ctx.requestId, n), request: ctx }),
    );
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
}
