/**
 * Writes frames as protobuf, driven by the layout read from bridge.proto. It writes the same bytes as protobufjs
 * (fields in number order, proto3 defaults of required fields left out unless they are declared `optional`), without building protobufjs message
 * objects first; tests compare both.
 */
import { bigintToBytes, isIntegerInBounds, MAX_INTEGER_DIGITS, normalizeBigInt } from "../schema/value.ts";
import { type FieldLayout, type MessageLayout, VALUE, WIRE_I32, WIRE_I64, WIRE_LEN, WIRE_VARINT } from "./layout.ts";
import { WireWriter } from "./wire-writer.ts";

const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);
const KEY_1_LEN = (1 << 3) | WIRE_LEN;
const KEY_2_LEN = (2 << 3) | WIRE_LEN;

const w = new WireWriter();
let maxDepth = 16;

function tooDeep(depth: number): void {
  if (depth > maxDepth) throw w.fault("BRIDGE_ERR_FRAME_TOO_DEEP", `nested deeper than ${maxDepth}`);
}

/** Writes the fields of one `Value` message (without its own key and length). */
function valueBody(v: unknown, depth: number): void {
  switch (typeof v) {
    case "number":
      if (!Number.isFinite(v)) throw w.fault("BRIDGE_ERR_FRAME_INVALID", "must be finite");
      if (Number.isSafeInteger(v)) {
        w.byte((VALUE.int << 3) | WIRE_VARINT);
        w.sint64(v === 0 ? 0 : v);
      } else if (Math.fround(v) === v) {
        w.byte((VALUE.float << 3) | WIRE_I32);
        w.float(v);
      } else {
        w.byte((VALUE.double << 3) | WIRE_I64);
        w.double(v);
      }
      return;
    case "string":
      w.byte((VALUE.string << 3) | WIRE_LEN);
      w.text(v);
      return;
    case "boolean":
      w.byte((VALUE.bool << 3) | WIRE_VARINT);
      w.byte(v ? 1 : 0);
      return;
    case "bigint": {
      const n = normalizeBigInt(v);
      if (typeof n === "number" || (n >= INT64_MIN && n <= INT64_MAX)) {
        w.byte((VALUE.int << 3) | WIRE_VARINT);
        w.sint64(n);
      } else if (!isIntegerInBounds(n)) {
        throw w.fault("BRIDGE_ERR_FRAME_INVALID", `an integer of more than ${MAX_INTEGER_DIGITS} digits`);
      } else if (n > 0n) {
        w.byte((VALUE.posBignum << 3) | WIRE_LEN);
        w.bytes(bigintToBytes(n));
      } else {
        w.byte((VALUE.negBignum << 3) | WIRE_LEN);
        w.bytes(bigintToBytes(-1n - n));
      }
      return;
    }
    case "object": {
      if (v === null) {
        w.byte((VALUE.null << 3) | WIRE_VARINT);
        w.byte(0);
        return;
      }
      if (v instanceof Uint8Array) {
        w.byte((VALUE.bytes << 3) | WIRE_LEN);
        w.bytes(v);
        return;
      }
      tooDeep(depth);
      const isList = Array.isArray(v);
      w.byte(((isList ? VALUE.list : VALUE.map) << 3) | WIRE_LEN);
      const at = w.open();
      if (isList) listBody(v, depth);
      else mapBody(v as Record<string, unknown>, depth);
      w.close(at);
      return;
    }
    default:
      throw w.fault("BRIDGE_ERR_FRAME_INVALID", `a ${typeof v} is not a Value`);
  }
}

/** ListValue body: `repeated Value values = 1`. */
function listBody(list: readonly unknown[], depth: number): void {
  for (let i = 0; i < list.length; i++) {
    w.path.push(i);
    w.byte(KEY_1_LEN);
    const at = w.open();
    valueBody(list[i], depth + 1);
    w.close(at);
    w.path.pop();
  }
}

/** MapValue body: `repeated MapEntry entries = 1`, each `{string key = 1; Value value = 2}`. */
function mapBody(map: Record<string, unknown>, depth: number): void {
  for (const key of Object.keys(map)) {
    const value = map[key];
    if (value === undefined) continue;
    w.path.push(key);
    if (key === "__proto__") throw w.fault("BRIDGE_ERR_FRAME_INVALID", "the map key __proto__ is not accepted");
    w.byte(KEY_1_LEN);
    const entry = w.open();
    w.byte(KEY_1_LEN);
    w.text(key);
    w.byte(KEY_2_LEN);
    const inner = w.open();
    valueBody(value, depth + 1);
    w.close(inner);
    w.close(entry);
    w.path.pop();
  }
}

function field(f: FieldLayout, value: unknown, depth: number): void {
  const kind = f.kind;
  switch (kind) {
    case "string":
    case "id":
    case "codec":
      // Implicit presence (proto3): a required field at its default value is not written.
      if (f.required && !f.explicitPresence && value === "") return;
      w.byte(f.tag);
      w.text(value as string);
      return;
    case "bool":
      if (f.required && !f.explicitPresence && value === false) return;
      w.byte(f.tag);
      w.byte(value ? 1 : 0);
      return;
    case "uint":
      if (f.required && !f.explicitPresence && value === 0) return;
      w.byte(f.tag);
      w.varint(value as number);
      return;
    case "number":
      w.byte(f.tag);
      w.double(value as number);
      return;
    case "bytes":
      w.byte(f.tag);
      w.bytes(value as Uint8Array);
      return;
    case "names":
      // `repeated string`: one tagged field per name, in order.
      for (const name of value as string[]) {
        w.byte(f.tag);
        w.text(name);
      }
      return;
    case "values": {
      // `repeated Value`: one tagged Value per item; items sit at the depth a `list` field's items do.
      tooDeep(depth + 1);
      const items = value as unknown[];
      for (let i = 0; i < items.length; i++) {
        w.path.push(i);
        w.byte(f.tag);
        const at = w.open();
        valueBody(items[i], depth + 2);
        w.close(at);
        w.path.pop();
      }
      return;
    }
    case "value": {
      w.byte(f.tag);
      const at = w.open();
      valueBody(value, depth + 1);
      w.close(at);
      return;
    }
    default: {
      tooDeep(depth + 1);
      w.byte(f.tag);
      const at = w.open();
      if (kind === "map") mapBody(value as Record<string, unknown>, depth + 1);
      else if (kind === "list") listBody(value as unknown[], depth + 1);
      else if ("object" in kind) message(f.nested!, value as Record<string, unknown>, depth + 1);
      else records(f.nested!, value as Record<string, unknown>[], depth + 1);
      w.close(at);
    }
  }
}

/** SenmlPack body: `repeated SenmlRecord records = 1`. */
function records(layout: MessageLayout, list: readonly Record<string, unknown>[], depth: number): void {
  tooDeep(depth + 1);
  for (let i = 0; i < list.length; i++) {
    w.path.push(i);
    w.byte(KEY_1_LEN);
    const at = w.open();
    message(layout, list[i], depth + 1);
    w.close(at);
    w.path.pop();
  }
}

function message(layout: MessageLayout, frame: Record<string, unknown>, depth: number): void {
  for (const f of layout.fields) {
    const value = frame[f.key];
    if (value === undefined) continue;
    w.path.push(f.key);
    field(f, value, depth);
    w.path.pop();
  }
}

/** Writes `Frame { <case> = body }` for a frame already checked against its schema. Throws DecodeFault. */
export function writePbFrame(
  caseNumber: number,
  layout: MessageLayout,
  frame: Record<string, unknown>,
  depthLimit: number,
): Uint8Array {
  w.reset();
  maxDepth = depthLimit;
  w.byte((caseNumber << 3) | WIRE_LEN);
  const at = w.open();
  message(layout, frame, 1);
  w.close(at);
  return w.finish();
}
