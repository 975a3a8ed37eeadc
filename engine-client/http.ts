/**
 * One HTTP attempt against one replica. Everything that can go wrong before the first byte of the answer is
 * turned into a BridgeError here (OVERLOADED / UNAVAILABLE are retryable, BAD_REQUEST is not), so the retry
 * loop decides with `isRetryableEngineError` alone.
 */
import type { Dispatcher } from "undici";
import { BodyFeed } from "./body-feed.ts";
import type { Clock } from "./clock.ts";
import { CONTEXT_LENGTH_REASON, isContextLengthRefusalText } from "./context-length.ts";
import { ENGINE_ERROR_CODES, engineError, engineText, isDeadlineExpiry, redactSecret } from "./errors.ts";
import type { EngineClientOptions } from "./options.ts";
import type { Replica } from "./replica.ts";
import { type ChatCompletion, parseCompletion, parseEngineErrorObject } from "./wire.ts";

/** Largest error body read from an engine; the connection is dropped rather than the rest read. */
const MAX_ERROR_BODY_BYTES = 16_384;

/**
 * Longest wait for an error body once its status came, on the client's clock. The status alone classifies the
 * answer; the body only adds the engine's words, so a body that stalls (a proxy's, a hung engine's) must not hold the
 * request until its deadline, or until bodyTimeoutMs of silence.
 */
export const ERROR_BODY_TIMEOUT_MS = 2000;

/** Largest non-streamed answer accepted. */
const MAX_COMPLETION_BYTES = 8 << 20;

/** A 200 response whose first body chunk has arrived: from here on, nothing is retried. */
export interface OpenedStream {
  body: Dispatcher.ResponseData["body"];
  /** The body's reads, taken by its `data` events (see body-feed.ts). */
  feed: BodyFeed;
  /** What the feed held when the first chunk arrived (at least that chunk). */
  firstChunks: Buffer[];
}

export function requestHeaders(options: EngineClientOptions, requestId: string): Record<string, string> {
  const headers: Record<string, string> = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    // vLLM adopts X-Request-Id as its request id, so engine logs and ours can be correlated.
    "x-request-id": requestId,
  };
  if (options.apiKey !== undefined) headers.authorization = `Bearer ${options.apiKey}`;
  return headers;
}

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
      headers: requestHeaders(options, init.requestId),
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
    throw engineError(
      ENGINE_ERROR_CODES.unavailable,
      `engine replica ${replica.key} could not be reached: ${describeNetworkError(err, options.apiKey)}`,
      { replica: replica.key },
      err,
    );
  }
  if (response.statusCode >= 200 && response.statusCode < 300) return response;
  throw await statusError(replica, options, response);
}

/** Opens a streamed completion and waits for its first body chunk. */
export async function openStream(
  replica: Replica,
  options: EngineClientOptions,
  init: { body: string; requestId: string; signal: AbortSignal },
): Promise<OpenedStream> {
  const response = await sendRequest(replica, options, { method: "POST", path: "/v1/chat/completions", ...init });
  const feed = new BodyFeed(response.body);
  let first: Buffer[] | null;
  try {
    first = await feed.take();
  } catch (err) {
    response.body.destroy();
    if (init.signal.aborted) throw init.signal.reason;
    throw engineError(
      ENGINE_ERROR_CODES.unavailable,
      `engine replica ${replica.key} dropped the stream before its first byte: ${describeNetworkError(err, options.apiKey)}`,
      { replica: replica.key },
      err,
    );
  }
  if (first === null) {
    throw engineError(ENGINE_ERROR_CODES.unavailable, `engine replica ${replica.key} sent an empty stream`, {
      replica: replica.key,
    });
  }
  return { body: response.body, feed, firstChunks: first };
}

/** Sends a non-streamed completion and reads its answer; an unreadable answer is STREAM_BROKEN (not retried). */
export async function postCompletion(
  replica: Replica,
  options: EngineClientOptions,
  init: { body: string; requestId: string; signal: AbortSignal },
): Promise<ChatCompletion> {
  const response = await sendRequest(replica, options, { method: "POST", path: "/v1/chat/completions", ...init });
  const text = await readLimited(response.body, MAX_COMPLETION_BYTES);
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

async function statusError(replica: Replica, options: EngineClientOptions, response: Dispatcher.ResponseData) {
  const status = response.statusCode;
  let text = "";
  try {
    text = await readLimited(response.body, MAX_ERROR_BODY_BYTES, {
      clock: options.clock,
      timeoutMs: ERROR_BODY_TIMEOUT_MS,
    });
  } catch {
    // The status alone is enough to classify the failure.
  }
  // The whole text is what the context-length check reads; the error keeps it redacted and cut (engineText).
  let fullMessage = text;
  let marks: unknown[] = [];
  try {
    const parsed = parseEngineErrorObject(JSON.parse(text));
    if (parsed !== undefined) {
      fullMessage = parsed.message;
      marks = [parsed.type, parsed.code];
    }
  } catch {
    // Not JSON: keep the raw text.
  }
  const engineMessage = engineText(fullMessage, options.apiKey);
  const retryAfter = response.headers["retry-after"];
  const details: Record<string, unknown> = { replica: replica.key, status };
  if (retryAfter !== undefined) details.retryAfter = Array.isArray(retryAfter) ? retryAfter[0] : retryAfter;
  const suffix = engineMessage.length > 0 ? `: ${engineMessage}` : "";
  if (options.retry.statusCodes.includes(status)) {
    const code = status === 429 || status === 503 ? ENGINE_ERROR_CODES.overloaded : ENGINE_ERROR_CODES.unavailable;
    return engineError(code, `engine replica ${replica.key} answered ${status}${suffix}`, details);
  }
  if (status >= 500) {
    return engineError(ENGINE_ERROR_CODES.unavailable, `engine replica ${replica.key} answered ${status}${suffix}`, {
      ...details,
      retryable: false,
    });
  }
  // The one refusal a caller can cure by sending less: said in details, so nobody downstream reads the text.
  if (isContextLengthRefusalText(redactSecret(fullMessage, options.apiKey), marks))
    details.reason = CONTEXT_LENGTH_REASON;
  return engineError(
    ENGINE_ERROR_CODES.badRequest,
    `engine replica ${replica.key} refused the request (${status})${suffix}`,
    details,
  );
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

/** A short description of a network failure: its code and message, with any secret removed. */
export function describeNetworkError(err: unknown, secret: string | undefined): string {
  if (!(err instanceof Error)) return "unknown error";
  const code = (err as { code?: unknown }).code;
  const text = typeof code === "string" ? `${code} ${err.message}` : err.message;
  return redactSecret(text, secret);
}
