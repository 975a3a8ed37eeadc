/**
 * Agent values may hold `bigint` and `Uint8Array`, which JSON cannot carry. Operators read JSON, so both are
 * converted the same way everywhere (REST API and WebSocket protocol): a bigint that fits a double becomes a
 * number, a larger one a decimal string; bytes become `{ "$base64": "..." }`.
 */
import type { Value } from "../../codecs/frames.ts";

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Converts an agent value to plain JSON. Non-finite numbers become null, as JSON.stringify would do. */
export function toJsonValue(value: Value | undefined): JsonValue {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case "boolean":
    case "string":
      return value;
    case "number":
      return Number.isFinite(value) ? value : null;
    case "bigint":
      return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(value)
        : value.toString();
    default:
      break;
  }
  if (value instanceof Uint8Array) return { $base64: Buffer.from(value).toString("base64") };
  if (Array.isArray(value)) return value.map((v) => toJsonValue(v));
  const out: { [key: string]: JsonValue } = {};
  for (const [k, v] of Object.entries(value)) out[k] = toJsonValue(v);
  return out;
}

/** Narrows an agent value to a map, or undefined. */
export function asMap(value: Value | undefined): { [key: string]: Value } | undefined {
  if (value === null || value === undefined || typeof value !== "object") return undefined;
  if (Array.isArray(value) || value instanceof Uint8Array) return undefined;
  return value;
}
