/**
 * A protobuf writer for frames, driven by the layout read from bridge.proto. It writes the same bytes as protobufjs
 * (fields in number order, proto3 defaults of required fields left out), without building protobufjs message
 * objects first; tests compare both. Nested messages reserve one length byte and move their body in the rare case it
 * grows past 127 bytes.
 */
import { DecodeFault } from "../schema/fault.ts";
import { PathStack } from "../schema/path.ts";
import { bigintToBytes, normalizeBigInt } from "../schema/value.ts";
import { type FieldLayout, type MessageLayout, VALUE, WIRE_I32, WIRE_I64, WIRE_LEN, WIRE_VARINT } from "./layout.ts";

const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);

let buf = new Uint8Array(4096);
let nodeBuf = Buffer.from(buf.buffer);
let view = new DataView(buf.buffer);
let pos = 0;
let maxDepth = 16;
const path = new PathStack();

function fault(code: "BRIDGE_ERR_FRAME_INVALID" | "BRIDGE_ERR_FRAME_TOO_DEEP", message: string): DecodeFault {
  const field = path.toString();
  return new DecodeFault(code, `${field || "frame"}: ${message}`, field || undefined);
}

function ensure(n: number): void {
  if (pos + n <= buf.length) return;
  let size = buf.length * 2;
  while (size < pos + n) size *= 2;
  const next = new Uint8Array(size);
  next.set(buf.subarray(0, pos));
  buf = next;
  nodeBuf = Buffer.from(buf.buffer);
  view = new DataView(buf.buffer);
}

/** A varint of a non-negative safe integer. */
function varint(n: number): void {
  ensure(10);
  while (n >= 0x80) {
    buf[pos++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  buf[pos++] = n;
}

function varintBig(n: bigint): void {
  ensure(10);
  while (n >= 0x80n) {
    buf[pos++] = Number(n & 0x7fn) | 0x80;
    n >>= 7n;
  }
  buf[pos++] = Number(n);
}

/** sint64: zigzag, then varint (2n for n >= 0, -2n-1 below). */
function sint64(n: number | bigint): void {
  if (typeof n === "number" && n < 2 ** 51 && n > -(2 ** 51)) {
    varint(n >= 0 ? n * 2 : -n * 2 - 1);
    return;
  }
  const b = BigInt(n);
  varintBig(b >= 0n ? b << 1n : (-b << 1n) - 1n);
}

function tag(t: number): void {
  ensure(1);
  buf[pos++] = t;
}

/** Starts a length-delimited body; returns where its one-byte length placeholder is. */
function open(): number {
  ensure(1);
  return pos++;
}

/** Ends a body opened at `at`, widening the length to a multi-byte varint (moving the body) when needed. */
function close(at: number): void {
  const length = pos - at - 1;
  if (length < 0x80) {
    buf[at] = length;
    return;
  }
  let extra = 0;
  for (let n = length; n >= 0x80; n = Math.floor(n / 0x80)) extra++;
  ensure(extra);
  buf.copyWithin(at + 1 + extra, at + 1, pos);
  let n = length;
  let p = at;
  while (n >= 0x80) {
    buf[p++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  buf[p] = n;
  pos += extra;
}

function text(s: string): void {
  const n = s.length;
  if (n < 64) {
    let ascii = true;
    for (let i = 0; i < n; i++) {
      if (s.charCodeAt(i) > 0x7f) {
        ascii = false;
        break;
      }
    }
    if (ascii) {
      varint(n);
      ensure(n);
      for (let i = 0; i < n; i++) buf[pos++] = s.charCodeAt(i);
      return;
    }
  }
  if (!(s as string & { isWellFormed(): boolean }).isWellFormed()) {
    throw fault("BRIDGE_ERR_FRAME_INVALID", "text holds a lone surrogate");
  }
  const length = Buffer.byteLength(s, "utf8");
  varint(length);
  ensure(length);
  pos += nodeBuf.write(s, pos, length, "utf8");
}

function bytes(b: Uint8Array): void {
  varint(b.length);
  ensure(b.length);
  buf.set(b, pos);
  pos += b.length;
}

function double(v: number): void {
  ensure(8);
  view.setFloat64(pos, v, true);
  pos += 8;
}

/** Writes the fields of one `Value` message (without its own key and length). */
function valueBody(v: unknown, depth: number): void {
  switch (typeof v) {
    case "number":
      if (!Number.isFinite(v)) throw fault("BRIDGE_ERR_FRAME_INVALID", "must be finite");
      if (Number.isSafeInteger(v)) {
        tag((VALUE.int << 3) | WIRE_VARINT);
        sint64(v === 0 ? 0 : v);
      } else if (Math.fround(v) === v) {
        tag((VALUE.float << 3) | WIRE_I32);
        ensure(4);
        view.setFloat32(pos, v, true);
        pos += 4;
      } else {
        tag((VALUE.double << 3) | WIRE_I64);
        double(v);
      }
      return;
    case "string":
      tag((VALUE.string << 3) | WIRE_LEN);
      text(v);
      return;
    case "boolean":
      tag((VALUE.bool << 3) | WIRE_VARINT);
      tag(v ? 1 : 0);
      return;
    case "bigint": {
      const n = normalizeBigInt(v);
      if (typeof n === "number" || (n >= INT64_MIN && n <= INT64_MAX)) {
        tag((VALUE.int << 3) | WIRE_VARINT);
        sint64(n);
      } else if (n > 0n) {
        tag((VALUE.posBignum << 3) | WIRE_LEN);
        bytes(bigintToBytes(n));
      } else {
        tag((VALUE.negBignum << 3) | WIRE_LEN);
        bytes(bigintToBytes(-1n - n));
      }
      return;
    }
    case "object": {
      if (v === null) {
        tag((VALUE.null << 3) | WIRE_VARINT);
        tag(0);
        return;
      }
      if (v instanceof Uint8Array) {
        tag((VALUE.bytes << 3) | WIRE_LEN);
        bytes(v);
        return;
      }
      if (depth > maxDepth) throw fault("BRIDGE_ERR_FRAME_TOO_DEEP", `nested deeper than ${maxDepth}`);
      const isList = Array.isArray(v);
      tag(((isList ? VALUE.list : VALUE.map) << 3) | WIRE_LEN);
      const at = open();
      if (isList) listBody(v, depth);
      else mapBody(v as Record<string, unknown>, depth);
      close(at);
      return;
    }
    default:
      throw fault("BRIDGE_ERR_FRAME_INVALID", `a ${typeof v} is not a Value`);
  }
}

/** ListValue body: `repeated Value values = 1`. */
function listBody(list: readonly unknown[], depth: number): void {
  for (let i = 0; i < list.length; i++) {
    path.push(i);
    tag((1 << 3) | WIRE_LEN);
    const at = open();
    valueBody(list[i], depth + 1);
    close(at);
    path.pop();
  }
}

/** MapValue body: `repeated MapEntry entries = 1`, each `{string key = 1; Value value = 2}`. */
function mapBody(map: Record<string, unknown>, depth: number): void {
  for (const key of Object.keys(map)) {
    const value = map[key];
    if (value === undefined) continue;
    path.push(key);
    if (key === "__proto__") throw fault("BRIDGE_ERR_FRAME_INVALID", "the map key __proto__ is not accepted");
    tag((1 << 3) | WIRE_LEN);
    const entry = open();
    tag((1 << 3) | WIRE_LEN);
    text(key);
    tag((2 << 3) | WIRE_LEN);
    const inner = open();
    valueBody(value, depth + 1);
    close(inner);
    close(entry);
    path.pop();
  }
}

function field(layout: FieldLayout, value: unknown, depth: number): void {
  const kind = layout.kind;
  switch (kind) {
    case "string":
    case "id":
    case "codec":
      // Implicit presence (proto3): a required field at its default value is not written.
      if (layout.required && value === "") return;
      tag(layout.tag);
      text(value as string);
      return;
    case "bool":
      if (layout.required && value === false) return;
      tag(layout.tag);
      tag(value ? 1 : 0);
      return;
    case "uint":
      if (layout.required && value === 0) return;
      tag(layout.tag);
      varint(value as number);
      return;
    case "number":
      tag(layout.tag);
      double(value as number);
      return;
    case "bytes":
      tag(layout.tag);
      bytes(value as Uint8Array);
      return;
    case "value": {
      tag(layout.tag);
      const at = open();
      valueBody(value, depth + 1);
      close(at);
      return;
    }
    default: {
      if (depth + 1 > maxDepth) throw fault("BRIDGE_ERR_FRAME_TOO_DEEP", `nested deeper than ${maxDepth}`);
      tag(layout.tag);
      const at = open();
      if (kind === "map") mapBody(value as Record<string, unknown>, depth + 1);
      else if (kind === "list") listBody(value as unknown[], depth + 1);
      else if ("object" in kind) message(layout.nested!, value as Record<string, unknown>, depth + 1);
      else records(layout.nested!, value as Record<string, unknown>[], depth + 1);
      close(at);
    }
  }
}

/** SenmlPack body: `repeated SenmlRecord records = 1`. */
function records(layout: MessageLayout, list: readonly Record<string, unknown>[], depth: number): void {
  if (depth + 1 > maxDepth) throw fault("BRIDGE_ERR_FRAME_TOO_DEEP", `nested deeper than ${maxDepth}`);
  for (let i = 0; i < list.length; i++) {
    path.push(i);
    tag((1 << 3) | WIRE_LEN);
    const at = open();
    message(layout, list[i], depth + 1);
    close(at);
    path.pop();
  }
}

function message(layout: MessageLayout, frame: Record<string, unknown>, depth: number): void {
  for (const f of layout.fields) {
    const value = frame[f.key];
    if (value === undefined) continue;
    path.push(f.key);
    field(f, value, depth);
    path.pop();
  }
}

/** Writes `Frame { <case> = body }` for a frame already checked against its schema. Throws DecodeFault. */
export function writePbFrame(
  caseNumber: number,
  layout: MessageLayout,
  frame: Record<string, unknown>,
  depthLimit: number,
): Uint8Array {
  pos = 0;
  maxDepth = depthLimit;
  path.reset();
  tag((caseNumber << 3) | WIRE_LEN);
  const at = open();
  message(layout, frame, 1);
  close(at);
  return buf.slice(0, pos);
}
