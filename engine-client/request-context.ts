/**
 * The life of one request as the client tracks it: one abort that fires for the caller's signal, the deadline, or
 * the client closing, with the BridgeError that says which as its reason.
 *
 * The context is its own abort source rather than an AbortController: a streamed call's parts (admission, the retry
 * loop, the dispatch handler, the reader) listen to it directly, so the common call makes no AbortSignal at all.
 * Node's AbortSignal costs about 3 us to create and as much again per listener added and removed (it is an
 * EventTarget), a sixth of the client's synchronous work per call (issue #5). `signal` makes a real one on demand,
 * for the paths that hand one to undici's `request` (a non-streamed completion).
 */
import type { ChatOptions } from "../agents/engine.ts";
import type { Clock, TimerHandle } from "./clock.ts";
import { ENGINE_ERROR_CODES, engineError } from "./errors.ts";

/** Told when a request is aborted. An object, so a handler can be its own listener (no closure per request). */
export interface AbortListener {
  onAbort(reason: unknown): void;
}

/** A request's abort as its parts read it: an AbortSignal's state, with listeners told at most once. */
export interface AbortSource {
  readonly aborted: boolean;
  readonly reason: unknown;
  /** Tells `listener` of the abort, once; a listener added after the abort is not told (check `aborted` first). */
  listen(listener: AbortListener): void;
  unlisten(listener: AbortListener): void;
}

export class RequestContext implements AbortSource {
  readonly agentId: string;
  readonly priority: number;
  /**
   * When the request times out, ms since the epoch: the caller's `deadline` or its `timeoutMs` from the moment the
   * client accepted the call, whichever is earlier. What its TIMEOUT error reports; `deadlineAt` is what times it.
   */
  readonly deadline: number | undefined;
  /**
   * The same moment on the clock's monotonicNow, fixed when the call is accepted: a step of the wall clock while the
   * request runs neither expires it at once nor stretches it.
   */
  readonly deadlineAt: number | undefined;
  /** When the client accepted the call, on the clock's monotonicNow: where its durations (TTFT, duration) start. */
  readonly startedAt: number;
  #aborted = false;
  #reason: unknown;
  /** Usually none or one at a time (a queued request's waiter, then its dispatch handler). */
  #listeners: AbortListener[] = [];
  /** Made only when `signal` is asked for. */
  #controller: AbortController | undefined;
  #deadlineTimer: TimerHandle | undefined;
  #external: AbortSignal | undefined;

  /** `arm` ran: the caller's signal and the deadline are followed. */
  #armed = false;
  #disposed = false;

  constructor(
    options: ChatOptions,
    readonly requestId: string,
    private readonly clock: Clock,
    armLater = false,
  ) {
    this.agentId = options.agentId;
    this.priority = options.priority ?? 0;
    const wallNow = clock.now();
    this.startedAt = clock.monotonicNow();
    // A relative budget is turned into a deadline on this client's clock; the earlier of the two wins.
    const budget =
      typeof options.timeoutMs === "number" && Number.isFinite(options.timeoutMs)
        ? wallNow + options.timeoutMs
        : undefined;
    this.deadline =
      options.deadline === undefined
        ? budget
        : budget === undefined
          ? options.deadline
          : Math.min(budget, options.deadline);
    this.deadlineAt = this.deadline === undefined ? undefined : this.startedAt + (this.deadline - wallNow);
    this.#external = options.signal;
    // Checked now, as adding the listener would, though the listener itself may come later: a caller's wrong argument
    // is a throw of its call (a rejection of it, for the client's async methods), never one of an immediate.
    if (this.#external !== undefined && typeof this.#external.addEventListener !== "function")
      throw new TypeError("options.signal must be an AbortSignal");
    // Armed on the time just read, so a budget's timer gets the whole budget; asked to, the listener and the timer
    // wait for `arm`, and only what is over already aborts now.
    if (armLater) this.#abortIfOver(this.startedAt);
    else this.#arm(this.startedAt);
  }

  /**
   * Starts following the caller's signal and the deadline (once; not after `dispose`). A context made with `armLater`
   * is armed by its client after the request's write (client.ts): an AbortSignal listener and a timer cost a cold
   * question about 50 us before its request could leave (issue #5). An abort or a deadline that came in between takes
   * effect here.
   */
  arm(): void {
    this.#arm(this.clock.monotonicNow());
  }

  #arm(now: number): void {
    if (this.#armed || this.#disposed) return;
    this.#armed = true;
    this.#abortIfOver(now);
    if (this.#aborted) return;
    // The context itself listens (handleEvent): no closure per request.
    this.#external?.addEventListener("abort", this, { once: true });
    // Ref'd: a request waiting in the queue has no socket to keep the process alive until its deadline.
    if (this.deadlineAt !== undefined) {
      this.#deadlineTimer = this.clock.setTimeout(() => this.abort(this.#timeoutError()), this.deadlineAt - now, {
        ref: true,
      });
    }
  }

  /** Aborts when the caller's signal has fired or the deadline is no later than `now` (monotonicNow). */
  #abortIfOver(now: number): void {
    if (this.#external?.aborted === true) this.abort(cancelledError(this.#external.reason));
    else if (this.deadlineAt !== undefined && this.deadlineAt <= now) this.abort(this.#timeoutError());
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  get reason(): unknown {
    return this.#reason;
  }

  /** An AbortSignal that fires with this context, made on first use. */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    const listeners = this.#listeners;
    this.#listeners = [];
    for (const listener of listeners) listener.onAbort(reason);
    this.#controller?.abort(reason);
  }

  listen(listener: AbortListener): void {
    if (!this.#aborted) this.#listeners.push(listener);
  }

  unlisten(listener: AbortListener): void {
    const at = this.#listeners.indexOf(listener);
    if (at !== -1) this.#listeners.splice(at, 1);
  }

  /** The caller's signal fired (this context is its listener). */
  handleEvent(): void {
    this.abort(cancelledError(this.#external?.reason));
  }

  /** Waits `delayMs`, or rejects with the abort reason as soon as the request is aborted. */
  sleep(delayMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#aborted) {
        reject(this.#reason);
        return;
      }
      const listener: AbortListener = {
        onAbort: (reason) => {
          this.clock.clearTimeout(timer);
          reject(reason);
        },
      };
      // Ref'd: between two attempts nothing else may hold the event loop, and the caller awaits this.
      const timer = this.clock.setTimeout(
        () => {
          this.unlisten(listener);
          resolve();
        },
        delayMs,
        { ref: true },
      );
      this.listen(listener);
    });
  }

  /**
   * Settles as `promise` does, or rejects with the abort reason as soon as the request is aborted: for a wait this
   * request shares with others (the model lookup), which its own deadline or signal must not cancel but must end.
   */
  until<T>(promise: Promise<T>): Promise<T> {
    if (this.#aborted) return Promise.reject(this.#reason);
    return new Promise((resolve, reject) => {
      const listener: AbortListener = { onAbort: reject };
      this.listen(listener);
      promise.then(
        (value) => {
          this.unlisten(listener);
          resolve(value);
        },
        (err: unknown) => {
          this.unlisten(listener);
          reject(err);
        },
      );
    });
  }

  /** Stops the deadline timer and unhooks the caller's signal. */
  dispose(): void {
    this.#disposed = true;
    if (this.#deadlineTimer !== undefined) this.clock.clearTimeout(this.#deadlineTimer);
    if (this.#armed) this.#external?.removeEventListener("abort", this);
  }

  #timeoutError() {
    return engineError(ENGINE_ERROR_CODES.timeout, `engine request passed its deadline`, {
      deadline: this.deadline,
      elapsedMs: Math.round(this.clock.monotonicNow() - this.startedAt),
    });
  }
}

function cancelledError(reason: unknown) {
  return engineError(ENGINE_ERROR_CODES.cancelled, "engine request was cancelled by its caller", {}, reason);
}
