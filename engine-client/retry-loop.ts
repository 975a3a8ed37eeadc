/**
 * The retry loop around one request: admit, attempt, and on a retryable failure (before the first streamed
 * byte) count it against the replica (unless it was back-pressure: 429/503), back off with full jitter or the
 * engine's Retry-After, and try again, preferring replicas that have not failed this request. Deadlines and
 * cancellation end the loop at once.
 */
import { BridgeError } from "../errors/index.ts";
import type { Admission } from "./admission.ts";
import { fullJitterDelayMs, parseRetryAfterMs } from "./backoff.ts";
import {
  ENGINE_ERROR_CODES,
  type EngineErrorCode,
  engineError,
  isEngineBackPressure,
  isRetryableEngineError,
} from "./errors.ts";
import { notify } from "./observer.ts";
import type { EngineClientOptions } from "./options.ts";
import type { Replica } from "./replica.ts";
import type { RequestContext } from "./request-context.ts";

/**
 * A successful attempt: its value, where it ran, and its admission slot, given back by `release()` (idempotent). A
 * class, not a closure per attempt: the closure cost a defineProperty each (the runtime keeps function names).
 */
export class Attempted<T> {
  #released = false;

  constructor(
    readonly value: T,
    readonly replica: Replica,
    private readonly admission: Admission,
  ) {}

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.admission.release(this.replica);
  }
}

/**
 * The X-Request-Id of attempt `n` of request `requestId`. vLLM takes the header as its own request id and refuses
 * (400) an id it still runs, and an attempt this client gave up on may still run there (a deadline before the
 * headers, a connection dropped before the engine noticed): a retry gets its own id, with the first one's as prefix.
 */
export function attemptRequestId(requestId: string, n: number): string {
  return n === 1 ? requestId : `${requestId}-${n}`;
}

/** Attempt 1 when its caller sent it without the loop (streamed-call.ts, the common call) and it failed. */
export interface FailedAttempt {
  replica: Replica;
  error: unknown;
}

/**
 * Runs `attempt` on an admitted replica, retrying retryable failures with backoff on other replicas. With `failed`,
 * attempt 1 was already made (admitted and sent by the caller, in its own turn) and failed: the loop takes it from
 * there, as if it had made it.
 */
export async function withAttempts<T>(
  ctx: RequestContext,
  admission: Admission,
  options: EngineClientOptions,
  onRetry: () => void,
  attempt: (replica: Replica, n: number) => Promise<T>,
  failed?: FailedAttempt,
): Promise<Attempted<T>> {
  const { clock, observer } = options;
  const avoid = new Set<Replica>();
  let lastError: unknown;
  for (let n = failed === undefined ? 1 : 2; ; n++) {
    if (failed !== undefined) {
      // Attempt n - 1 failed: counted, its slot given back, then a backoff (or the failure thrown, when not retried).
      const delayMs = retryDelayMs(ctx, admission, options, onRetry, failed.replica, n - 1, failed.error);
      avoid.add(failed.replica);
      lastError = failed.error;
      await ctx.sleep(delayMs);
    }
    const queuedAt = clock.monotonicNow();
    let replica: Replica;
    try {
      // A free slot is taken without waiting, so the attempt below starts in this same turn.
      const admitted = admission.acquire(ctx.agentId, ctx.priority, ctx, avoid);
      replica = admitted instanceof Promise ? await admitted : admitted;
    } catch (err) {
      // After failed attempts, say what they were: "every replica is cooling" alone hides the engine's answer.
      if (lastError === undefined || !(err instanceof BridgeError) || ctx.aborted) throw err;
      throw engineError(err.code as EngineErrorCode, err.message, { ...err.details, attempts: n - 1 }, lastError);
    }
    notify(observer, "onDispatch", {
      agentId: ctx.agentId,
      replica: replica.key,
      queueWaitMs: clock.monotonicNow() - queuedAt,
      attempt: n,
    });
    try {
      // Success is recorded by the caller once the answer is complete: a stream that opens and then breaks is
      // not a healthy replica.
      const value = await attempt(replica, n);
      return new Attempted(value, replica, admission);
    } catch (raw) {
      failed = { replica, error: raw };
    }
  }
}

/**
 * Attempt `n` on `replica` failed with `raw`: counts it against the replica (unless it was back-pressure) and gives its
 * slot back, then throws the failure when it is not retried (not retryable, the last attempt, or no time left before
 * the deadline), or returns how long to back off before the next attempt.
 */
function retryDelayMs(
  ctx: RequestContext,
  admission: Admission,
  options: EngineClientOptions,
  onRetry: () => void,
  replica: Replica,
  n: number,
  raw: unknown,
): number {
  const { retry, clock, observer } = options;
  const err = ctx.aborted ? ctx.reason : raw;
  const retryable = !ctx.aborted && isRetryableEngineError(err);
  const backPressure = retryable && isEngineBackPressure(err);
  // Back-pressure is a live replica asking for patience, not a sick one: it never cools the replica down.
  if (retryable && !backPressure) replica.recordFailure();
  const retryAfter = err instanceof BridgeError ? err.details.retryAfter : undefined;
  // The wall clock: a Retry-After may be an HTTP date, which only the wall clock can turn into a wait.
  const retryAfterMs = parseRetryAfterMs(typeof retryAfter === "string" ? retryAfter : undefined, clock.now());
  // The replica asked everyone, not just this request, to come back later: hold its new attempts until then.
  if (backPressure && retryAfterMs !== undefined) replica.hold(retryAfterMs);
  admission.release(replica);
  if (!retryable || n >= retry.maxAttempts) throw err;
  // The engine's own estimate wins over jitter. One longer than maxDelayMs is waited only by a request whose
  // deadline leaves room for it; without a deadline it ends the retries (the caller decides what to do).
  if (retryAfterMs !== undefined && retryAfterMs > retry.maxDelayMs && ctx.deadline === undefined) throw err;
  const delayMs = Math.max(
    retryAfterMs ?? 0,
    fullJitterDelayMs(n, retry.baseDelayMs, retry.maxDelayMs, options.random),
  );
  if (ctx.deadlineAt !== undefined && clock.monotonicNow() + delayMs >= ctx.deadlineAt) throw err;
  onRetry();
  const code = err instanceof BridgeError ? err.code : ENGINE_ERROR_CODES.unavailable;
  notify(observer, "onRetry", { agentId: ctx.agentId, replica: replica.key, attempt: n, delayMs, code });
  return delayMs;
}
