/**
 * The life of one request as the client tracks it: one AbortController that fires for the caller's signal,
 * the deadline, or the client closing, with the BridgeError that says which as its reason.
 */
import type { ChatOptions } from "../agents/engine.ts";
import type { Clock, TimerHandle } from "./clock.ts";
import { ENGINE_ERROR_CODES, engineError } from "./errors.ts";

export class RequestContext {
  readonly controller = new AbortController();
  readonly agentId: string;
  readonly priority: number;
  readonly deadline: number | undefined;
  readonly startedAt: number;
  #deadlineTimer: TimerHandle | undefined;
  #detach: (() => void) | undefined;

  constructor(
    options: ChatOptions,
    readonly requestId: string,
    private readonly clock: Clock,
  ) {
    this.agentId = options.agentId;
    this.priority = options.priority ?? 0;
    this.startedAt = clock.now();
    // A relative budget is turned into a deadline on this client's clock; the earlier of the two wins.
    const budget =
      typeof options.timeoutMs === "number" && Number.isFinite(options.timeoutMs)
        ? this.startedAt + options.timeoutMs
        : undefined;
    this.deadline =
      options.deadline === undefined
        ? budget
        : budget === undefined
          ? options.deadline
          : Math.min(budget, options.deadline);
    const external = options.signal;
    if (external !== undefined) {
      const onAbort = () => this.abort(cancelledError(external.reason));
      if (external.aborted) onAbort();
      else {
        external.addEventListener("abort", onAbort, { once: true });
        this.#detach = () => external.removeEventListener("abort", onAbort);
      }
    }
    if (this.deadline !== undefined && !this.signal.aborted) {
      const remaining = this.deadline - this.startedAt;
      if (remaining <= 0) this.abort(this.#timeoutError());
      // Ref'd: a request waiting in the queue has no socket to keep the process alive until its deadline.
      else this.#deadlineTimer = clock.setTimeout(() => this.abort(this.#timeoutError()), remaining, { ref: true });
    }
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }

  /** Waits `delayMs`, or rejects with the abort reason as soon as the request is aborted. */
  sleep(delayMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.signal.aborted) {
        reject(this.signal.reason);
        return;
      }
      const onAbort = () => {
        this.clock.clearTimeout(timer);
        reject(this.signal.reason);
      };
      // Ref'd: between two attempts nothing else may hold the event loop, and the caller awaits this.
      const timer = this.clock.setTimeout(
        () => {
          this.signal.removeEventListener("abort", onAbort);
          resolve();
        },
        delayMs,
        { ref: true },
      );
      this.signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * Settles as `promise` does, or rejects with the abort reason as soon as the request is aborted: for a wait this
   * request shares with others (the model lookup), which its own deadline or signal must not cancel but must end.
   */
  until<T>(promise: Promise<T>): Promise<T> {
    if (this.signal.aborted) return Promise.reject(this.signal.reason);
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(this.signal.reason);
      this.signal.addEventListener("abort", onAbort, { once: true });
      promise.then(
        (value) => {
          this.signal.removeEventListener("abort", onAbort);
          resolve(value);
        },
        (err: unknown) => {
          this.signal.removeEventListener("abort", onAbort);
          reject(err);
        },
      );
    });
  }

  /** Stops the deadline timer and unhooks the caller's signal. */
  dispose(): void {
    if (this.#deadlineTimer !== undefined) this.clock.clearTimeout(this.#deadlineTimer);
    this.#detach?.();
  }

  #timeoutError() {
    return engineError(ENGINE_ERROR_CODES.timeout, `engine request passed its deadline`, {
      deadline: this.deadline,
      elapsedMs: this.clock.now() - this.startedAt,
    });
  }
}

function cancelledError(reason: unknown) {
  return engineError(ENGINE_ERROR_CODES.cancelled, "engine request was cancelled by its caller", {}, reason);
}
