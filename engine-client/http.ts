/**
 * One HTTP attempt against one replica through undici's `request` (a non-streamed completion, the model list; a
 * streamed completion goes through stream-dispatch.ts). Everything that can go wrong before the first byte of the
 * answer is turned into a BridgeError here (OVERLOADED / UNAVAILABLE are retryable, BAD_REQUEST is not), so the retry
 * loop decides with `isRetryableEngineError` alone.
 */
import type { Dispatcher } from "undici";
import type { BridgeError } from "../errors/index.ts";
import type { Clock } from "./clock.ts";
import { ENGINE_ERROR_CODES, engineError, isDeadlineExpiry, redactSecret } from "./errors.ts";
import type { EngineClientOptions } from "./options.ts";
import type { Replica } from "./replica.ts";
import { ERROR_BODY_TIMEOUT_MS, MAX_ERROR_BODY_BYTES, statusError } from "./status-error.ts";
import { type ChatCompletion, parseCompletion } from "./wire.ts";

/** Largest non-streamed answer accepted. */
const MAX_COMPLETION_BYTES = 8 << 20;

/** Sends a request and returns the response when its status is 2xx; otherwise throws a classified error. */
export async function sendRequest(
  replica: Replica,
  options: EngineClientOptions,
  init: { method: "GET" | "POST"; path: string; body?: string; requestId: string; signal: AbortSignal },
): Promise<Dispatcher.ResponseData> {
  replica.attempts++;
  let response: Dispatcher.ResponseData;
  try {
    response = await replica.pool.request({
      method: init.method,
      path: `${replica.basePath}${init.path}`,
      headers: replica.headers(init.requestId),
      body: init.body,
      signal: init.signal,
    });
  } catch (err) {
    if (init.signal.aborted) {
      // The deadline passed with no headers yet: a hung replica, or only a busy one (or a non-streamed answer still
      // being generated). Not a failure by itself; the replica's health is probed and a failed probe counts. A
      // caller's own cancellation says nothing about the replica and probes nothing.
      if (isDeadlineExpiry(init.signal.reason)) replica.suspectStall();
      throw init.signal.reason;
    }
    throw networkFailure(replica, "could not be reached", err, options.apiKey);
  }
  if (response.statusCode >= 200 && response.statusCode < 300) return response;
  throw await readStatusError(replica, options, response);
}

/** Sends a non-streamed completion and reads its answer; an unreadable answer is STREAM_BROKEN (not retried). */
export async function postCompletion(
  replica: Replica,
  options: EngineClientOptions,
  init: { body: string; requestId: string; signal: AbortSignal },
): Promise<ChatCompletion> {
  const response = await sendRequest(replica, options, { method: "POST", path: "/v1/chat/completions", ...init });
  const received = { bytes: 0 };
  let text: string;
  try {
    text = await readLimited(response.body, MAX_COMPLETION_BYTES, undefined, received);
  } catch (err) {
    // As for a stream: once the answer's first byte came, a drop is not retried (the engine generated it all), and
    // the raw network error would otherwise be retried by its code.
    if (received.bytes === 0 || init.signal.aborted) throw err;
    const why = describeNetworkError(err, options.apiKey);
    throw engineError(
      ENGINE_ERROR_CODES.streamBroken,
      `engine replica ${replica.key} dropped the answer after its first byte: ${why}`,
      { replica: replica.key },
      err,
    );
  }
  let parsed: ChatCompletion | undefined;
  try {
    parsed = parseCompletion(JSON.parse(text));
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined) {
    throw engineError(ENGINE_ERROR_CODES.streamBroken, `engine replica ${replica.key} sent an unreadable answer`, {
      replica: replica.key,
    });
  }
  return parsed;
}

/** The classified error of a non-2xx response, with its body read within its bounds as the engine's words. */
async function readStatusError(replica: Replica, options: EngineClientOptions, response: Dispatcher.ResponseData) {
  let text = "";
  try {
    text = await readLimited(response.body, MAX_ERROR_BODY_BYTES, {
      clock: options.clock,
      timeoutMs: ERROR_BODY_TIMEOUT_MS,
    });
  } catch {
    // The status alone is enough to classify the failure.
  }
  return statusError(replica, options, response.statusCode, response.headers, text);
}

/**
 * Reads a body as UTF-8 text, at most `limit` bytes: a body longer than that is destroyed (its connection closed)
 * rather than read to its end, which an endless one never reaches. With `bound`, a body still unfinished after
 * `bound.timeoutMs` on `bound.clock` is destroyed too, and what arrived until then is the text.
 */
export async function readLimited(
  body: Dispatcher.ResponseData["body"],
  limit: number,
  bound?: { clock: Clock; timeoutMs: number },
  /** Counts the bytes that arrived, also when the read then fails. */
  received?: { bytes: number },
): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  let timedOut = false;
  const timer = bound?.clock.setTimeout(() => {
    timedOut = true;
    body.destroy();
  }, bound.timeoutMs);
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (received !== undefined) received.bytes += chunk.length;
      if (chunk.length > limit - size) {
        parts.push(chunk.subarray(0, limit - size));
        // Leaving the loop destroys the body: the rest is never read.
        break;
      }
      parts.push(chunk);
      size += chunk.length;
    }
  } catch (err) {
    if (!timedOut) throw err;
  } finally {
    if (bound !== undefined) bound.clock.clearTimeout(timer);
  }
  return Buffer.concat(parts).toString("utf8");
}

/**
 * The UNAVAILABLE error (retryable) of an attempt on `replica` that a network failure ended before the answer's first
 * byte: `what` says how far it got ("could not be reached"), followed by the failure's code and message.
 */
export function networkFailure(replica: Replica, what: string, err: unknown, secret: string | undefined): BridgeError {
  return engineError(
    ENGINE_ERROR_CODES.unavailable,
    `engine replica ${replica.key} ${what}: ${describeNetworkError(err, secret)}`,
    { replica: replica.key },
    err,
  );
}

/** A short description of a network failure: its code and message, with any secret removed. */
export function describeNetworkError(err: unknown, secret: string | undefined): string {
  if (!(err instanceof Error)) return "unknown error";
  const code = (err as { code?: unknown }).code;
  const text = typeof code === "string" ? `${code} ${err.message}` : err.message;
  return redactSecret(text, secret);
}
