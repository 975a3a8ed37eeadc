import { CODEC_NAMES } from "../frames.ts";
import { type FieldSpec, type FrameSchema, MAX_ID_LENGTH, MAX_METRIC_NAME_LENGTH } from "./channels.ts";
import { DecodeFault, fieldFault, joinPath } from "./fault.ts";

/** True for a map-shaped value: an object that is not null, an array or a byte string. */
export function isPlainMap(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x) && !(x instanceof Uint8Array);
}

function invalid(field: string, message: string): DecodeFault {
  return fieldFault("BRIDGE_ERR_FRAME_INVALID", field, message);
}

/**
 * Checks a decoded map against a channel schema and returns a new object holding only the schema's fields, in
 * schema order. Unknown keys are dropped, not refused: firmware newer than the bridge may add fields, and protobuf
 * skips unknown fields the same way, so the three codecs agree. Values inside `value`/`map`/`list` fields are
 * already checked by the codec that built them. Throws `DecodeFault` (caught at the codec boundary).
 */
export function checkFrame(schema: FrameSchema, raw: unknown, path = ""): Record<string, unknown> {
  if (!isPlainMap(raw)) {
    throw new DecodeFault("BRIDGE_ERR_FRAME_INVALID", `${schema.name} must be a map`, path === "" ? undefined : path);
  }
  const out: Record<string, unknown> = {};
  for (const spec of schema.fields) {
    const value = Object.hasOwn(raw, spec.key) ? raw[spec.key] : undefined;
    const field = joinPath(path, spec.key);
    if (value === undefined) {
      if (spec.required) throw invalid(field, `required field of ${schema.name} is missing`);
      continue;
    }
    out[spec.key] = checkField(spec, value, field);
  }
  if (schema.atLeastOne !== undefined && !schema.atLeastOne.some((k) => out[k] !== undefined)) {
    const keys = schema.atLeastOne.join(" or ");
    throw new DecodeFault("BRIDGE_ERR_FRAME_INVALID", `${schema.name} needs ${keys}`, path === "" ? undefined : path);
  }
  return out;
}

function checkField(spec: FieldSpec, value: unknown, field: string): unknown {
  const kind = spec.kind;
  switch (kind) {
    case "string":
      if (typeof value !== "string") throw invalid(field, "must be a text string");
      return value;
    case "id":
      if (typeof value !== "string" || value.length === 0 || value.length > MAX_ID_LENGTH) {
        throw invalid(field, `must be a text string of 1 to ${MAX_ID_LENGTH} characters`);
      }
      return value;
    case "bool":
      if (typeof value !== "boolean") throw invalid(field, "must be a boolean");
      return value;
    case "number":
      if (typeof value !== "number" || !Number.isFinite(value)) throw invalid(field, "must be a finite number");
      // -0 becomes 0 in every codec, since JSON cannot carry it.
      return value === 0 ? 0 : value;
    case "uint":
      if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
        throw invalid(field, "must be a non-negative integer up to 2^53-1");
      }
      return value;
    case "codec":
      if (typeof value !== "string" || !(CODEC_NAMES as readonly string[]).includes(value)) {
        throw invalid(field, `must be one of ${CODEC_NAMES.join(", ")}`);
      }
      return value;
    case "bytes":
      if (!(value instanceof Uint8Array)) throw invalid(field, "must be a byte string");
      return value;
    case "value":
      return value;
    case "map":
      if (!isPlainMap(value)) throw invalid(field, "must be a map");
      return value;
    case "list":
      if (!Array.isArray(value)) throw invalid(field, "must be an array");
      checkCount(spec, value, field);
      return value;
    case "names":
      return checkNames(spec, value, field);
    case "values":
      if (!Array.isArray(value) || value.length === 0) throw invalid(field, "must be a non-empty array");
      checkCount(spec, value, field);
      return value;
    default:
      if ("object" in kind) return checkFrame(kind.object, value, field);
      if (!Array.isArray(value)) throw invalid(field, "must be an array");
      return value.map((item, i) => checkFrame(kind.arrayOf, item, joinPath(field, i)));
  }
}

function checkCount(spec: FieldSpec, list: readonly unknown[], field: string): void {
  if (spec.maxItems !== undefined && list.length > spec.maxItems) {
    throw invalid(field, `holds ${list.length} items, more than the limit of ${spec.maxItems}`);
  }
}

/** An alias table: each name is a future map key of readings, so it follows the map-key rules and is unique. */
function checkNames(spec: FieldSpec, value: unknown, field: string): string[] {
  if (!Array.isArray(value) || value.length === 0) throw invalid(field, "must be a non-empty array of names");
  checkCount(spec, value, field);
  const seen = new Set<string>();
  for (let i = 0; i < value.length; i++) {
    const name: unknown = value[i];
    const at = joinPath(field, i);
    if (typeof name !== "string" || name.length === 0 || name.length > MAX_METRIC_NAME_LENGTH) {
      throw invalid(at, `must be a text string of 1 to ${MAX_METRIC_NAME_LENGTH} characters`);
    }
    if (name === "__proto__") throw invalid(at, "the name __proto__ is not accepted");
    if (seen.has(name)) throw invalid(at, `repeats the metric name ${JSON.stringify(name)}`);
    seen.add(name);
  }
  return value as string[];
}
