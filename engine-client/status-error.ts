/**
 * What a non-2xx answer means, for the retry loop: 429/503 are OVERLOADED and the other retryable statuses
 * UNAVAILABLE (both retried), any other 5xx UNAVAILABLE but not retried, the rest BAD_REQUEST (a context-length
 * refusal marked in details). The status alone classifies; the error body only adds the engine's words, so it is read
 * within a bound in bytes and in time by whoever reads it (http.ts, stream-dispatch.ts).
 */
import type { IncomingHttpHeaders } from "node:http";
import type { BridgeError } from "../errors/index.ts";
import { CONTEXT_LENGTH_REASON, isContextLengthRefusalText } from "./context-length.ts";
import { ENGINE_ERROR_CODES, engineError, engineText, redactSecret } from "./errors.ts";
import type { EngineClientOptions } from "./options.ts";
import type { Replica } from "./replica.ts";
import { parseEngineErrorObject } from "./wire.ts";

/** Largest error body read from an engine; the connection is dropped rather than the rest read. */
export const MAX_ERROR_BODY_BYTES = 16_384;

/**
 * Longest wait for an error body once its status came, on the client's clock. The status alone classifies the
 * answer; the body only adds the engine's words, so a body that stalls (a proxy's, a hung engine's) must not hold the
 * request until its deadline, or until bodyTimeoutMs of silence.
 */
export const ERROR_BODY_TIMEOUT_MS = 2000;

/** The classified error for a non-2xx `status`, with `text` (the error body as far as it was read) as its words. */
export function statusError(
  replica: Replica,
  options: EngineClientOptions,
  status: number,
  headers: IncomingHttpHeaders,
  text: string,
): BridgeError {
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
  const retryAfter = headers["retry-after"];
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
