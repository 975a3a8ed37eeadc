/**
 * The engine client's error codes and the one predicate that decides whether a failure may be retried.
 * Callers branch on `code` (docs/errors.md, "## Engine"), never on message text.
 */
import { BridgeError } from "../errors/index.ts";

/** Stable codes of every fault the engine client raises. */
export const ENGINE_ERROR_CODES = {
  /** The engine (or this client's queue) is full: 429/503 from the engine, or too many requests waiting here. */
  overloaded: "BRIDGE_ERR_ENGINE_OVERLOADED",
  /** No replica answered: connection refused or reset, 5xx, every replica cooling down. */
  unavailable: "BRIDGE_ERR_ENGINE_UNAVAILABLE",
  /** The request's deadline passed, while queued or while streaming. */
  timeout: "BRIDGE_ERR_ENGINE_TIMEOUT",
  /** The engine refused the request itself (4xx other than 408/429): bad model, bad schema, bad API key; or it is malformed. */
  badRequest: "BRIDGE_ERR_ENGINE_BAD_REQUEST",
  /** The stream broke after its first byte: an error object mid-stream, a dropped connection, no `[DONE]`. */
  streamBroken: "BRIDGE_ERR_ENGINE_STREAM_BROKEN",
  /**
   * The caller's AbortSignal fired, the client was closed, or the caller stopped reading a stream without closing it
   * (`details.reason` CONSUMER_IDLE_REASON).
   */
  cancelled: "BRIDGE_ERR_ENGINE_CANCELLED",
  /** No engine URL is configured. */
  notConfigured: "BRIDGE_ERR_ENGINE_NOT_CONFIGURED",
} as const;

export type EngineErrorCode = (typeof ENGINE_ERROR_CODES)[keyof typeof ENGINE_ERROR_CODES];

const ENGINE_CODES = new Set<string>(Object.values(ENGINE_ERROR_CODES));
const RETRYABLE_CODES = new Set<string>([ENGINE_ERROR_CODES.overloaded, ENGINE_ERROR_CODES.unavailable]);

/**
 * Node and undici codes of connection-level failures: the request never reached the engine, or the engine
 * went away before answering, so sending it again is safe.
 */
const RETRYABLE_NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_CLOSED",
]);

/** Creates an engine fault with a stable code. */
export function engineError(
  code: EngineErrorCode,
  message: string,
  details: Record<string, unknown> = {},
  cause?: unknown,
): BridgeError {
  return new BridgeError(code, message, details, cause === undefined ? undefined : { cause });
}

/**
 * The one retry predicate: walks `err` and its `cause` chain from the outside in, and the first link that
 * says something decides. An engine BridgeError decides by its code (overloaded and unavailable are retryable;
 * timeout, cancelled, bad request, stream broken and not configured are not; `details.retryable: false` vetoes,
 * as for a 5xx the operator removed from `retry.statusCodes`), a raw network error by its code.
 *
 * @example
 * if (isRetryableEngineError(err)) scheduleRetry();
 */
export function isRetryableEngineError(err: unknown): boolean {
  const seen = new Set<unknown>();
  let current: unknown = err;
  while (current !== undefined && current !== null && !seen.has(current)) {
    seen.add(current);
    if (current instanceof BridgeError && ENGINE_CODES.has(current.code)) {
      return RETRYABLE_CODES.has(current.code) && current.details.retryable !== false;
    }
    const code = networkCode(current);
    if (code !== undefined && RETRYABLE_NETWORK_CODES.has(code)) return true;
    current = current instanceof Error ? current.cause : undefined;
  }
  return false;
}

/**
 * True for the engine's back-pressure answers (429, 503): the replica is alive and says "later". They are retried
 * like any overload but never count towards the replica's cooldown: cooling the only replica of a busy engine
 * would turn a short queue-full spell into UNAVAILABLE for every waiting request. Connection errors, other 5xx
 * and broken streams still count.
 */
export function isEngineBackPressure(err: unknown): boolean {
  if (!(err instanceof BridgeError) || err.code !== ENGINE_ERROR_CODES.overloaded) return false;
  const status = err.details.status;
  return status === 429 || status === 503;
}

/**
 * `details.reason` of the CANCELLED error that ends a stream whose consumer stopped reading without closing it
 * (`consumerIdleTimeoutMs`): the client gave its slot back on the caller's behalf.
 */
export const CONSUMER_IDLE_REASON = "consumer-idle";

/** True for the error a request's own deadline aborts it with (TIMEOUT), as opposed to a caller's cancellation. */
export function isDeadlineExpiry(err: unknown): boolean {
  return err instanceof BridgeError && err.code === ENGINE_ERROR_CODES.timeout;
}

function networkCode(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null || !("code" in err)) return undefined;
  const code = (err as { code: unknown }).code;
  return typeof code === "string" ? code : undefined;
}

/** Most characters of an engine's own words (an error body, an error object's message) kept in an error. */
export const MAX_ENGINE_TEXT_CHARS = 500;

/**
 * An engine's own words as an error may carry them: the API key redacted first (a cut through an echoed key would
 * leave its first part unmatched), then trimmed and cut to MAX_ENGINE_TEXT_CHARS, never inside a surrogate pair. The
 * error reaches logs and a device's `down/error` frame, so its size is not the engine's to choose.
 */
export function engineText(text: string, secret: string | undefined): string {
  let cut = redactSecret(text, secret).trim();
  if (cut.length <= MAX_ENGINE_TEXT_CHARS) return cut;
  cut = cut.slice(0, MAX_ENGINE_TEXT_CHARS);
  const last = cut.charCodeAt(cut.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? cut.slice(0, -1) : cut;
}

/**
 * Removes the API key from any text that may end up in an error, a log line or a frame. Engines have been
 * seen echoing the presented key in their 401 bodies, so text from the engine is never trusted verbatim.
 */
export function redactSecret(text: string, secret: string | undefined): string {
  if (secret === undefined || secret.length === 0) return text;
  return text.split(secret).join("[REDACTED]");
}
