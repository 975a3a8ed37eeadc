/**
 * Conversions between `Value`s and the `Value` / `ListValue` / `MapValue` messages of bridge.proto.
 * protobufjs represents 64-bit integers as `{ low, high }` pairs (Long); integers within ±(2^53-1) become numbers.
 */
import { DecodeFault, joinPath } from "../../../codecs/schema/fault.ts";
import { bigintToBytes, bytesToBigInt, checkKey, checkText, normalizeBigInt } from "../../../codecs/schema/value.ts";

/** A protobufjs message as plain properties. */
export type PbObject = Record<string, unknown>;

const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);
const TWO_32 = 2 ** 32;

const VALUE_KINDS = [
  "nullValue",
  "boolValue",
  "intValue",
  "doubleValue",
  "stringValue",
  "bytesValue",
  "listValue",
  "mapValue",
  "posBignum",
  "negBignum",
  "floatValue",
] as const;

function invalid(field: string, message: string): DecodeFault {
  return new DecodeFault("BRIDGE_ERR_FRAME_INVALID", `${field || "frame"}: ${message}`, field || undefined);
}

function tooDeep(field: string, maxDepth: number): DecodeFault {
  return new DecodeFault(
    "BRIDGE_ERR_FRAME_TOO_DEEP",
    `${field || "frame"}: nested deeper than ${maxDepth}`,
    field || undefined,
  );
}

/**
 * A fresh plain Uint8Array: protobufjs hands out Buffers or views that share the input's memory, and a frame must
 * neither pin the MQTT packet nor compare unequal to the same bytes from another codec.
 */
export function plainBytes(x: unknown): Uint8Array {
  return x instanceof Uint8Array ? new Uint8Array(x) : new Uint8Array(0);
}

/** A protobufjs 64-bit integer (Long, number or string) as a canonical integer. */
export function longToInteger(x: unknown, unsigned: boolean): number | bigint {
  if (typeof x === "number") return x;
  if (typeof x === "object" && x !== null && "low" in x && "high" in x) {
    const low = Number((x as { low: unknown }).low) >>> 0;
    const high = Number((x as { high: unknown }).high);
    const hi = unsigned ? high >>> 0 : high | 0;
    // Exact within these bounds, but -2^53 itself (high -0x200000, low 0) is beyond the safe range: a bigint.
    if (hi >= -0x200000 && hi < 0x200000 && Number.isSafeInteger(hi * TWO_32 + low)) return hi * TWO_32 + low;
    return normalizeBigInt((BigInt(hi) << 32n) | BigInt(low));
  }
  throw invalid("", "malformed 64-bit integer");
}

/** A bigint in int64 range as a protobufjs-friendly `{ low, high }` pair. */
function bigintToLong(n: bigint): { low: number; high: number; unsigned: boolean } {
  const u = BigInt.asUintN(64, n);
  return { low: Number(u & 0xffffffffn) | 0, high: Number(u >> 32n) | 0, unsigned: false };
}

export function numberToPb(v: number, field: string): PbObject {
  if (!Number.isFinite(v)) throw invalid(field, "must be finite");
  if (Number.isSafeInteger(v)) return { intValue: v === 0 ? 0 : v };
  return Math.fround(v) === v ? { floatValue: v } : { doubleValue: v };
}

/** Converts a Value into a `Value` message object. Throws DecodeFault. */
export function valueToPb(v: unknown, depth: number, maxDepth: number, field: string): PbObject {
  switch (typeof v) {
    case "number":
      return numberToPb(v, field);
    case "string":
      checkText(v, field);
      return { stringValue: v };
    case "boolean":
      return { boolValue: v };
    case "bigint": {
      const n = normalizeBigInt(v);
      if (typeof n === "number") return { intValue: n };
      if (n >= INT64_MIN && n <= INT64_MAX) return { intValue: bigintToLong(n) };
      return n > 0n ? { posBignum: bigintToBytes(n) } : { negBignum: bigintToBytes(-1n - n) };
    }
    case "object":
      if (v === null) return { nullValue: 0 };
      if (v instanceof Uint8Array) return { bytesValue: v };
      if (depth > maxDepth) throw tooDeep(field, maxDepth);
      if (Array.isArray(v)) return { listValue: listToPb(v, depth, maxDepth, field) };
      return { mapValue: mapToPb(v as Record<string, unknown>, depth, maxDepth, field) };
    default:
      throw invalid(field, `a ${typeof v} is not a Value`);
  }
}

export function listToPb(list: unknown[], depth: number, maxDepth: number, field: string): PbObject {
  return { values: list.map((item, i) => valueToPb(item, depth + 1, maxDepth, joinPath(field, i))) };
}

export function mapToPb(map: Record<string, unknown>, depth: number, maxDepth: number, field: string): PbObject {
  const entries: PbObject[] = [];
  for (const key of Object.keys(map)) {
    const value = map[key];
    if (value === undefined) continue;
    const path = joinPath(field, key);
    checkKey(key, path);
    checkText(key, path);
    entries.push({ key, value: valueToPb(value, depth + 1, maxDepth, path) });
  }
  return { entries };
}

/** Converts a decoded `Value` message into a Value. Throws DecodeFault. */
export function valueFromPb(msg: PbObject, depth: number, maxDepth: number, field: string): unknown {
  // A decoded message owns exactly the fields that were on the wire, so its own keys name the kinds it sets.
  const keys = Object.keys(msg);
  if (keys.length !== 1) {
    throw invalid(field, keys.length === 0 ? "Value sets no kind" : `Value sets ${keys.join(" and ")}`);
  }
  const kind = keys[0] as (typeof VALUE_KINDS)[number];
  switch (kind) {
    case "nullValue":
      return null;
    case "boolValue":
    case "stringValue":
      return msg[kind];
    case "bytesValue":
      return plainBytes(msg.bytesValue);
    case "intValue":
      return longToInteger(msg.intValue, false);
    case "doubleValue":
    case "floatValue": {
      const n = msg[kind] as number;
      if (!Number.isFinite(n)) throw invalid(field, "NaN and infinities are not accepted");
      return n === 0 ? 0 : n;
    }
    case "posBignum":
      return normalizeBigInt(bytesToBigInt(msg.posBignum as Uint8Array));
    case "negBignum":
      return normalizeBigInt(-1n - bytesToBigInt(msg.negBignum as Uint8Array));
    case "listValue":
      if (depth > maxDepth) throw tooDeep(field, maxDepth);
      return listFromPb(msg.listValue as PbObject, depth, maxDepth, field);
    case "mapValue":
      if (depth > maxDepth) throw tooDeep(field, maxDepth);
      return mapFromPb(msg.mapValue as PbObject, depth, maxDepth, field);
    default:
      throw invalid(field, `Value sets an unknown kind ${String(kind)}`);
  }
}

export function listFromPb(msg: PbObject, depth: number, maxDepth: number, field: string): unknown[] {
  const values = (msg.values ?? []) as PbObject[];
  return values.map((item, i) => valueFromPb(item, depth + 1, maxDepth, joinPath(field, i)));
}

export function mapFromPb(msg: PbObject, depth: number, maxDepth: number, field: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const entry of (msg.entries ?? []) as PbObject[]) {
    const key = entry.key as string;
    const path = joinPath(field, key);
    checkKey(key, path);
    if (Object.hasOwn(out, key)) throw invalid(path, "duplicate map key");
    const value = entry.value;
    if (value === null || value === undefined) throw invalid(path, "map entry without a value");
    out[key] = valueFromPb(value as PbObject, depth + 1, maxDepth, path);
  }
  return out;
}
