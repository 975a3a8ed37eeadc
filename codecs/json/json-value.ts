/**
 * The JSON form of `Value`s. JSON has no byte strings, and most JSON readers lose integers beyond 2^53, so two
 * one-key maps stand in (the bridge's own decoder also reads plain integer tokens exactly, see json-parse.ts):
 * `{"$bytes": "<base64, RFC 4648 section 4, padded>"}` and `{"$bigint": "<decimal>"}`. A real map whose only key is
 * `$bytes`, `$bigint` or `$map` is escaped as `{"$map": {...}}`, so every Value has exactly one JSON form.
 */
import { type DecodeFault, fieldFault, joinPath } from "../schema/fault.ts";
import { checkKey, checkText, isIntegerInBounds, MAX_INTEGER_DIGITS, normalizeBigInt } from "../schema/value.ts";
import { isIntegralFloat } from "./json-write.ts";

const RESERVED = new Set(["$bytes", "$bigint", "$map"]);
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const DECIMAL = /^-?(?:0|[1-9][0-9]{0,4000})$/;

function tooDeep(field: string, maxDepth: number): DecodeFault {
  return fieldFault("BRIDGE_ERR_FRAME_TOO_DEEP", field || undefined, `nested deeper than ${maxDepth}`);
}

function invalid(field: string, message: string): DecodeFault {
  return fieldFault("BRIDGE_ERR_FRAME_INVALID", field || undefined, message);
}

let integralFloats = 0;

/**
 * How many integral floats beyond 2^53 (json-write.ts) `toJsonValue` met since the last call, and resets the count:
 * the encoder writes with `JSON.stringify` unless there was one.
 */
export function takeIntegralFloatCount(): number {
  const n = integralFloats;
  integralFloats = 0;
  return n;
}

/** Converts a Value (checked on the way) into its JSON-ready form. Throws DecodeFault. */
export function toJsonValue(v: unknown, depth: number, maxDepth: number, field: string): unknown {
  switch (typeof v) {
    case "number":
      if (!Number.isFinite(v)) throw invalid(field, "must be finite");
      if (isIntegralFloat(v)) integralFloats++;
      return v === 0 ? 0 : v;
    case "string":
      checkText(v, field);
      return v;
    case "boolean":
      return v;
    case "bigint": {
      const n = normalizeBigInt(v);
      if (typeof n === "number") return n;
      // The decoder reads no longer `$bigint` text; no codec writes what the codecs cannot read back.
      if (!isIntegerInBounds(n)) throw invalid(field, `an integer of more than ${MAX_INTEGER_DIGITS} digits`);
      return { $bigint: n.toString() };
    }
    case "object": {
      if (v === null) return null;
      if (v instanceof Uint8Array)
        return { $bytes: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") };
      if (depth > maxDepth) throw tooDeep(field, maxDepth);
      if (Array.isArray(v)) return v.map((item, i) => toJsonValue(item, depth + 1, maxDepth, joinPath(field, i)));
      return toJsonMap(v as Record<string, unknown>, depth, maxDepth, field, depth > 1);
    }
    default:
      throw invalid(field, `a ${typeof v} is not a Value`);
  }
}

/** `escape` is false for the frame itself, whose keys are the schema's. */
export function toJsonMap(
  map: Record<string, unknown>,
  depth: number,
  maxDepth: number,
  field: string,
  escapeReserved: boolean,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let count = 0;
  let last = "";
  for (const key of Object.keys(map)) {
    const value = map[key];
    if (value === undefined) continue;
    const path = joinPath(field, key);
    checkKey(key, path);
    checkText(key, path);
    out[key] = toJsonValue(value, depth + 1, maxDepth, path);
    count++;
    last = key;
  }
  return escapeReserved && count === 1 && RESERVED.has(last) ? { $map: out } : out;
}

/**
 * Converts what `parseJson` (json-parse.ts) read into a Value (checked on the way). Throws DecodeFault. Text is not
 * checked for lone surrogates again: the parser refused every one, naming its path, and its input is strictly
 * decoded UTF-8 (json-codec.ts), so a second scan of every string and key would only cost the hot path.
 */
export function fromJsonValue(v: unknown, depth: number, maxDepth: number, field: string): unknown {
  switch (typeof v) {
    case "number":
      // JSON.parse turns 1e999 into Infinity.
      if (!Number.isFinite(v)) throw invalid(field, "number out of range");
      return v === 0 ? 0 : v;
    case "string":
      return v;
    case "object": {
      if (v === null) return null;
      if (Array.isArray(v)) {
        if (depth > maxDepth) throw tooDeep(field, maxDepth);
        return v.map((item, i) => fromJsonValue(item, depth + 1, maxDepth, joinPath(field, i)));
      }
      // The depth check of maps waits until fromJsonMap knows it is not a `$bytes`/`$bigint` leaf.
      return fromJsonMap(v as Record<string, unknown>, depth, maxDepth, field, depth > 1);
    }
    default:
      return v;
  }
}

export function fromJsonMap(
  map: Record<string, unknown>,
  depth: number,
  maxDepth: number,
  field: string,
  special: boolean,
): unknown {
  const keys = Object.keys(map);
  if (special && keys.length === 1 && RESERVED.has(keys[0])) {
    const key = keys[0];
    const inner = map[key];
    if (key === "$bytes") {
      if (typeof inner !== "string" || !BASE64.test(inner)) throw invalid(field, "$bytes must hold padded base64");
      return new Uint8Array(Buffer.from(inner, "base64"));
    }
    if (key === "$bigint") {
      if (typeof inner !== "string" || !DECIMAL.test(inner))
        throw invalid(field, "$bigint must hold a decimal integer");
      return normalizeBigInt(BigInt(inner));
    }
    if (typeof inner !== "object" || inner === null || Array.isArray(inner))
      throw invalid(field, "$map must hold a map");
    return fromJsonMap(inner as Record<string, unknown>, depth, maxDepth, field, false);
  }
  if (depth > maxDepth) throw tooDeep(field, maxDepth);
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const path = joinPath(field, key);
    checkKey(key, path);
    out[key] = fromJsonValue(map[key], depth + 1, maxDepth, path);
  }
  return out;
}
