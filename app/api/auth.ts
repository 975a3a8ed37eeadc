/**
 * Bearer-token checks shared by the REST API, /metrics and the WebSocket endpoint.
 */
import { createHash, timingSafeEqual } from "node:crypto";

/**
 * Compares two tokens in constant time. Both sides are hashed first so neither the length nor the content of the
 * expected token leaks through timing.
 */
export function tokensEqual(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b) && given.length === expected.length;
}

/** Extracts the token of an `Authorization: Bearer <token>` header; undefined when absent or of another scheme. */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return undefined;
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(value);
  return match?.[1];
}
