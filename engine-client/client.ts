/**
 * The engine client: an OpenAI-compatible `ReasoningEngine` over one or more replicas, with admission
 * (per-replica cap, fair queue, priorities), affinity, deadlines, cancellation, retries before the first byte,
 * replica cooldown and metrics hooks. The moving parts live in their own files; this one composes them.
 */
import type { ChatOptions, ChatRequest, ChatStreamEvent, ChatUsage } from "../agents/engine.ts";
import { BridgeError } from "../errors/index.ts";
import { Admission } from "./admission.ts";
import { ENGINE_ERROR_CODES, engineError } from "./errors.ts";
import { postCompletion } from "./http.ts";
import { listModels } from "./model-list.ts";
import { notify } from "./observer.ts";
import { type EngineClientInit, type EngineClientOptions, resolveEngineClientOptions } from "./options.ts";
import { Replica } from "./replica.ts";
import { RequestContext } from "./request-context.ts";
import { attemptRequestId, withAttempts } from "./retry-loop.ts";
import { StreamedCall, type StreamedCallHost } from "./streamed-call.ts";
import type { EngineClient, EngineClientStats, EngineHealth, EngineReplicaHealth } from "./types.ts";
import { validateCall } from "./validate-call.ts";
import { encodeChatBody } from "./chat-body.ts";
import type { ChatCompletion } from "./wire.ts";

/**
 * Creates an engine client. Options are validated here (BRIDGE_ERR_CONFIG naming the field).
 *
 * @example
 * const engine = createEngineClient({ urls: ["http://127.0.0.1:8000"], apiKey: process.env.ENGINE_KEY });
 * for await (const event of engine.stream({ messages: [{ role: "user", content: "hi" }] }, { agentId: "dev-1" })) {
 *   if (event.type === "text") process.stdout.write(event.text);
 * }
 */
export function createEngineClient(init: EngineClientInit = {}): EngineClient {
  return new OpenAiEngineClient(resolveEngineClientOptions(init));
}

class OpenAiEngineClient implements EngineClient {
  readonly #options: EngineClientOptions;
  readonly #replicas: Replica[];
  readonly #admission: Admission;
  /**
   * Every running call by its context, with its StreamedCall when it is streamed: close() ends each one, also a stream
   * whose consumer stopped reading (nothing else would end it before its consumer watchdog).
   */
  readonly #running = new Map<RequestContext, StreamedCall | undefined>();
  /** Set by close() while it waits for the calls it aborted to unwind; told when the last one ends. */
  #drained: (() => void) | undefined;
  #modelPromise: Promise<string | undefined> | undefined;
  /** The engine's first listed model, once looked up. */
  #listedModel: string | undefined;
  #sequence = 0;
  /**
   * What every request id of this client starts with: a random tag drawn once, so ids stay apart across restarts and
   * bridges sharing an engine, and a request's id is this plus its sequence number (no random draw per request).
   */
  readonly #requestIdPrefix: string;
  /** Counts a retry (made once, not per call). */
  readonly #countRetry = (): void => {
    this.#counters.retries++;
  };
  #closed = false;
  #closing: Promise<void> | undefined;
  #counters = { requests: 0, completed: 0, retries: 0, promptTokens: 0, completionTokens: 0, cachedTokens: 0 };
  #errors: Record<string, number> = {};
  /** The client's part in every streamed call (one object, not one set of closures per call). */
  readonly #callHost: StreamedCallHost;

  constructor(options: EngineClientOptions) {
    this.#options = options;
    this.#requestIdPrefix = `bridge-${Math.floor(options.random() * 2 ** 32).toString(36)}-`;
    this.#replicas = options.urls.map(
      (url) =>
        new Replica(
          url,
          options,
          (replica) => {
            notify(options.observer, "onReplicaState", { replica: replica.key, state: replica.state });
            this.#admission.pump();
          },
          () => this.#admission.pump(),
        ),
    );
    this.#admission = new Admission(this.#replicas, options);
    this.#callHost = {
      options,
      admission: this.#admission,
      countRetry: this.#countRetry,
      model: (request, ctx) => this.#model(request, ctx),
      recordDone: (ctx, replica, usage, finishReason, firstTokenAt) =>
        this.#recordDone(ctx, replica, usage, finishReason, firstTokenAt),
      fail: (ctx, replica, raw) => this.#fail(ctx, replica, raw),
      end: (ctx) => this.#end(ctx),
    };
    // Report every replica's starting state, so a gauge built on onReplicaState has a sample before the first change.
    for (const replica of this.#replicas) {
      notify(options.observer, "onReplicaState", { replica: replica.key, state: replica.state });
    }
  }

  async *stream(request: ChatRequest, options: ChatOptions): AsyncGenerator<ChatStreamEvent> {
    const call = this.#streamed(request, options);
    try {
      // One await per batch of socket reads; the events of a batch are handed on one by one, in order.
      for (let events = await call.next(); events.length > 0; events = await call.next()) {
        for (const event of events) yield event;
      }
    } catch (err) {
      throw call.fail(err);
    } finally {
      // Reached also when the consumer stops early: closing the body closes the socket, so the engine
      // sees the disconnect and frees the sequence's batch slot and KV blocks.
      call.close();
    }
  }

  /**
   * Not async itself: the common call is handed to the pool here (StreamedCall.start) before any promise is made;
   * the promise returned is the reading's, made after.
   */
  streamBatches(
    request: ChatRequest,
    options: ChatOptions,
    onEvents: (events: readonly ChatStreamEvent[]) => void,
  ): Promise<void> {
    let call: StreamedCall;
    try {
      call = this.#streamed(request, options);
    } catch (err) {
      // A fault of the caller's arguments beyond what validation looks at (a signal that is no AbortSignal) is a
      // rejection, as from any async API, never a throw.
      return Promise.reject(err);
    }
    return this.#readBatches(call, onEvents);
  }

  /** Hands `call`'s events to `onEvents` a batch at a time until its end, then closes it. */
  async #readBatches(call: StreamedCall, onEvents: (events: readonly ChatStreamEvent[]) => void): Promise<void> {
    try {
      for (;;) {
        let events: ChatStreamEvent[];
        try {
          events = await call.next();
        } catch (err) {
          throw call.fail(err);
        }
        if (events.length === 0) return;
        // A throw here is the caller's own: it ends the call (finally) and reaches the caller as it was thrown.
        onEvents(events);
      }
    } finally {
      call.close();
    }
  }

  /** One streamed call, shared by `stream` and `streamBatches` (streamed-call.ts), sent at once when it can be. */
  #streamed(request: ChatRequest, options: ChatOptions): StreamedCall {
    const ctx = this.#begin(request, options, true);
    const call = new StreamedCall(this.#callHost, ctx, request);
    this.#running.set(ctx, call);
    // A call sent at once leaves its bookkeeping (the caller's signal, the deadline, the dispatch's report) for an
    // immediate queued behind undici's, which writes the request: everything before that write delays it.
    if (call.start()) setImmediate(afterDispatch, ctx, call);
    else ctx.arm();
    return call;
  }

  async complete(request: ChatRequest, options: ChatOptions): Promise<ChatCompletion> {
    const ctx = this.#begin(request, options);
    this.#running.set(ctx, undefined);
    let replicaKey: string | undefined;
    try {
      const body = encodeChatBody(request, await this.#model(request, ctx), false);
      const attempt = await withAttempts(ctx, this.#admission, this.#options, this.#countRetry, (replica, n) =>
        postCompletion(replica, this.#options, {
          body,
          requestId: attemptRequestId(ctx.requestId, n),
          signal: ctx.signal,
        }),
      );
      replicaKey = attempt.replica.key;
      attempt.replica.recordSuccess();
      attempt.release();
      const completion = attempt.value;
      this.#recordDone(ctx, replicaKey, completion.usage, completion.finishReason, undefined);
      return completion;
    } catch (err) {
      throw this.#fail(ctx, replicaKey, err);
    } finally {
      this.#end(ctx);
    }
  }

  async health(): Promise<EngineHealth> {
    if (this.#replicas.length === 0) return { status: "not-configured", replicas: [] };
    // Checked together, each within healthCheckTimeoutMs: the answer never waits for a hung replica's headers timeout.
    // An observation only: a failed check here neither counts against the replica nor takes it out of rotation (a
    // flood of readiness probes must not cool a replica); the stall probe and the cooldown do that.
    const replicas = await Promise.all(
      this.#replicas.map(async (r): Promise<EngineReplicaHealth> => {
        const check = await r.checkHealth(this.#options.healthCheckTimeoutMs);
        // The state after the check: a replica cooled while it ran is reported cooling.
        const health: EngineReplicaHealth = { url: r.key, state: r.state, healthy: check.healthy };
        if (!check.healthy) health.problem = check.problem;
        return health;
      }),
    );
    const up = replicas.filter((r) => r.healthy && r.state === "healthy").length;
    const status = up === replicas.length ? "ok" : up === 0 ? "down" : "degraded";
    return { status, replicas };
  }

  async models(options: { signal?: AbortSignal } = {}): Promise<string[]> {
    this.#assertConfigured();
    const candidates = this.#replicas.filter((r) => r.state === "healthy");
    let lastError: unknown;
    for (const replica of candidates.length > 0 ? candidates : this.#replicas) {
      try {
        // Each replica within its own bound (model-list.ts): a hung one is passed over for the next.
        return await listModels(replica, this.#options, `models-${++this.#sequence}`, options.signal);
      } catch (err) {
        lastError = err;
        if (options.signal?.aborted) throw err;
      }
    }
    throw lastError instanceof BridgeError
      ? lastError
      : engineError(ENGINE_ERROR_CODES.unavailable, "no engine replica listed its models", {}, lastError);
  }

  stats(): EngineClientStats {
    const replicas = this.#replicas.map((r) => r.stats());
    return {
      queued: this.#admission.queued,
      inFlight: replicas.reduce((n, r) => n + r.inFlight, 0),
      ...this.#counters,
      errors: { ...this.#errors },
      replicas,
    };
  }

  /**
   * Ends every call and closes the sockets. Resolves (every caller of it) once nothing of any call is left: each one
   * has failed with CANCELLED and been counted (a stream whose consumer stopped reading gets the error at its next
   * read), its slot is back, and none of its timers (deadline, backoff, consumer watchdog, drain after `[DONE]`)
   * or listeners (on the caller's signal) remain.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    const closing = engineError(ENGINE_ERROR_CODES.cancelled, "the engine client was closed");
    this.#admission.rejectAll(closing);
    // An opened stream's consumer may never read again (nothing else would end the call before its watchdog, while its
    // deadline, a ref'd timer, keeps the process alive): it is ended here. Every other call is waiting on something
    // the abort settles (admission, a backoff, the headers, a read) and unwinds to its own end.
    for (const [ctx, call] of this.#running) {
      if (call?.opened === true) call.cancel(closing);
      else ctx.abort(closing);
    }
    // Its deadline timer and its listener on the caller's signal go now, not at the end of that unwinding.
    for (const ctx of this.#running.keys()) ctx.dispose();
    await Promise.all(this.#replicas.map((r) => r.close()));
    if (this.#running.size > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
  }

  /** A call's context, counted; the caller enters it among the running calls (with its StreamedCall, when streamed). */
  #begin(request: ChatRequest, options: ChatOptions, armLater = false): RequestContext {
    const problem = validateCall(request, options);
    // Invalid options are not read further: a negative budget would otherwise fail the call as TIMEOUT, and
    // missing options would throw a TypeError, before validation could say what is wrong.
    const ctx = new RequestContext(
      problem === undefined ? options : { agentId: typeof options?.agentId === "string" ? options.agentId : "" },
      this.#requestIdPrefix + (++this.#sequence).toString(36),
      this.#options.clock,
      armLater,
    );
    this.#counters.requests++;
    if (this.#closed) ctx.abort(engineError(ENGINE_ERROR_CODES.cancelled, "the engine client was closed"));
    if (problem !== undefined) ctx.abort(engineError(ENGINE_ERROR_CODES.badRequest, problem));
    if (this.#replicas.length === 0) {
      ctx.abort(
        engineError(ENGINE_ERROR_CODES.notConfigured, "no reasoning engine is configured (engine.urls is empty)"),
      );
    }
    return ctx;
  }

  #end(ctx: RequestContext): void {
    ctx.dispose();
    this.#running.delete(ctx);
    if (this.#drained !== undefined && this.#running.size === 0) {
      this.#drained();
      this.#drained = undefined;
    }
  }

  #assertConfigured(): void {
    if (this.#replicas.length === 0) {
      throw engineError(ENGINE_ERROR_CODES.notConfigured, "no reasoning engine is configured (engine.urls is empty)");
    }
  }

  /**
   * The model to name: the request's, the configured one, or the engine's first listed (looked up until a lookup
   * lists one, then kept). Known without waiting once looked up, so a request can leave in the same turn it was made
   * (see streamed-call.ts).
   */
  #model(request: ChatRequest, ctx: RequestContext): string | undefined | Promise<string | undefined> {
    if (ctx.aborted) return Promise.reject(ctx.reason);
    if (request.model !== undefined) return request.model;
    if (this.#options.model !== undefined) return this.#options.model;
    if (this.#listedModel !== undefined) return this.#listedModel;
    // The lookup is shared by every request waiting on it, so no one request's signal may cancel it; each replica it
    // asks has MODEL_LOOKUP_TIMEOUT_MS to answer.
    this.#modelPromise ??= this.models().then(
      (ids) => {
        // An empty list (an engine still loading its model) is no answer to keep: the next request asks again.
        if (ids.length === 0) this.#modelPromise = undefined;
        this.#listedModel = ids[0];
        return ids[0];
      },
      () => {
        // Try again next time; vLLM and llama.cpp serve their only model when none is named.
        this.#modelPromise = undefined;
        return undefined;
      },
    );
    // The caller's deadline and signal still hold while it waits for the lookup.
    return ctx.until(this.#modelPromise);
  }

  #recordDone(
    ctx: RequestContext,
    replica: string,
    usage: ChatUsage,
    finishReason: string,
    firstTokenAt: number | undefined,
  ): void {
    const now = this.#options.clock.monotonicNow();
    this.#counters.completed++;
    this.#counters.promptTokens += usage.promptTokens;
    this.#counters.completionTokens += usage.completionTokens;
    this.#counters.cachedTokens += usage.cachedTokens;
    const generatingMs = now - (firstTokenAt ?? ctx.startedAt);
    notify(this.#options.observer, "onComplete", {
      agentId: ctx.agentId,
      replica,
      usage,
      durationMs: now - ctx.startedAt,
      tokensPerSecond: generatingMs > 0 ? (usage.completionTokens * 1000) / generatingMs : 0,
      finishReason,
    });
  }

  /** Normalises a failure to a BridgeError, counts it and tells the observer. */
  #fail(ctx: RequestContext, replica: string | undefined, raw: unknown): BridgeError {
    const err =
      ctx.aborted && ctx.reason instanceof BridgeError
        ? ctx.reason
        : raw instanceof BridgeError
          ? raw
          : engineError(ENGINE_ERROR_CODES.unavailable, "engine request failed", {}, raw);
    this.#errors[err.code] = (this.#errors[err.code] ?? 0) + 1;
    notify(this.#options.observer, "onError", { agentId: ctx.agentId, replica, code: err.code });
    return err;
  }
}

/** A streamed call's bookkeeping once its request was written (see `#streamed`). */
function afterDispatch(ctx: RequestContext, call: StreamedCall): void {
  try {
    ctx.arm();
  } catch (err) {
    // A signal whose listener cannot be added (checked at the call; this is for one that throws anyway): the call
    // fails with it instead of the process.
    ctx.abort(err);
  }
  call.reportDispatch();
}
