/**
 * Small helpers over wire `Value`s: shape checks, deep equality, merge patches and shadow deltas, and a compact
 * storage encoding. Kept apart from the stores so the shadow rules (null deletes, maps merge) live in one place.
 */
import { Decoder, Encoder } from "cbor-x";
import { isValueMap, type Value, type ValueMap } from "../../codecs/frames.ts";

// Defined with the Value type (codecs/frames.ts) so the runtime's modules share it; re-exported for the device modules.
export { isValueMap };

// Plain CBOR maps (no record extension) so a stored blob decodes the same in any CBOR reader.
const encoder = new Encoder({ useRecords: false, mapsAsObjects: true });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });

/** Encodes a value for a BLOB column. Bigints and bytes survive, unlike JSON. */
export function encodeValue(value: Value): Uint8Array {
  return encoder.encode(value);
}

/** Decodes a BLOB written by `encodeValue`; a missing blob reads as null. */
export function decodeValue(blob: unknown): Value {
  if (!(blob instanceof Uint8Array) || blob.byteLength === 0) return null;
  return decoder.decode(blob) as Value;
}

/** Structural equality of two values; numbers and bigints compare by numeric value. */
export function deepEqual(a: Value | undefined, b: Value | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a === null || b === null) return false;
  if ((typeof a === "bigint" || typeof a === "number") && (typeof b === "bigint" || typeof b === "number")) {
    // Mixed number/bigint: a device may send 3 in CBOR and 3n in protobuf for the same reading.
    if (typeof a === "number" && typeof b === "number") return Object.is(a, b);
    const x = typeof a === "bigint" ? a : Number.isInteger(a) ? BigInt(a) : null;
    const y = typeof b === "bigint" ? b : Number.isInteger(b) ? BigInt(b) : null;
    return x !== null && x === y;
  }
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array) || a.byteLength !== b.byteLength) return false;
    return a.every((byte, i) => byte === b[i]);
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!(Array.isArray(a) && Array.isArray(b)) || a.length !== b.length) return false;
    return a.every((item, i) => deepEqual(item, b[i]));
  }
  if (isValueMap(a) && isValueMap(b)) {
    const keys = Object.keys(a);
    if (keys.length !== Object.keys(b).length) return false;
    return keys.every((key) => Object.hasOwn(b, key) && deepEqual(a[key], b[key]));
  }
  return false;
}

/**
 * Applies a merge patch (RFC 7386 semantics over values): a null deletes the key, a map merges into a map,
 * anything else replaces. Returns a new map; the inputs are not changed.
 */
export function mergePatch(target: ValueMap, patch: ValueMap): ValueMap {
  const out: ValueMap = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete out[key];
    } else if (isValueMap(value)) {
      const current = out[key];
      out[key] = mergePatch(isValueMap(current) ? current : {}, value);
    } else {
      out[key] = value;
    }
  }
  return out;
}

/**
 * The shadow delta: every desired key whose value differs from the reported one (maps compared key by key).
 * Reported keys the desired state does not mention are not part of the delta (the operator does not care).
 */
export function shadowDelta(desired: ValueMap, reported: ValueMap): ValueMap {
  const out: ValueMap = {};
  for (const [key, want] of Object.entries(desired)) {
    const have = reported[key];
    if (isValueMap(want) && isValueMap(have)) {
      const sub = shadowDelta(want, have);
      if (Object.keys(sub).length > 0) out[key] = sub;
    } else if (!deepEqual(want, have)) {
      out[key] = want;
    }
  }
  return out;
}

/** JSON text of a value for a model prompt or a tool result: bigints as numbers, bytes as base64. */
export function valueToJson(value: Value | undefined): string {
  return JSON.stringify(value ?? null, (_key, v: unknown) => {
    if (typeof v === "bigint") return Number(v);
    if (v instanceof Uint8Array) return { base64: Buffer.from(v).toString("base64") };
    return v;
  });
}

/** Converts parsed JSON (from model tool arguments) into a Value, dropping what a Value cannot hold. */
export function jsonToValue(input: unknown, depth = 0): Value {
  if (depth > 16) return null;
  if (input === null || typeof input === "boolean" || typeof input === "string") return input;
  if (typeof input === "number") return Number.isFinite(input) ? input : null;
  if (Array.isArray(input)) return input.map((item) => jsonToValue(item, depth + 1));
  if (typeof input === "object") {
    const out: ValueMap = {};
    for (const [key, value] of Object.entries(input as Record<string, unknown>)) {
      if (value !== undefined) out[key] = jsonToValue(value, depth + 1);
    }
    return out;
  }
  return null;
}
