/**
 * A strict protobuf reader for frames, driven by the layout read from bridge.proto. It reads what any proto3 encoder
 * writes (fields in any order, unknown fields skipped, a repeated scalar field's last value winning) and refuses with
 * a typed fault: truncation, bad varints, groups and reserved wire types, a known field with the wrong wire type,
 * invalid UTF-8, a Value with no kind or two kinds, duplicate map keys and nesting deeper than the limit. It recurses
 * only into known messages, so the depth limit also bounds its stack.
 */
import { DecodeFault } from "../schema/fault.ts";
import { PathStack } from "../schema/path.ts";
import { bytesToBigInt, normalizeBigInt } from "../schema/value.ts";
import { type MessageLayout, VALUE, WIRE_I32, WIRE_I64, WIRE_LEN, WIRE_VARINT } from "./layout.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const EMPTY = new Uint8Array(0);
const EMPTY_VIEW = new DataView(EMPTY.buffer);

let bytes: Uint8Array = EMPTY;
let view: DataView = EMPTY_VIEW;
let pos = 0;
let maxDepth = 16;
const path = new PathStack();

type Code = "BRIDGE_ERR_FRAME_INVALID" | "BRIDGE_ERR_FRAME_DECODE" | "BRIDGE_ERR_FRAME_TOO_DEEP";

function fault(code: Code, message: string): DecodeFault {
  const field = path.toString();
  return new DecodeFault(code, `${field || "frame"}: ${message}`, field || undefined);
}

function malformed(message: string): DecodeFault {
  return new DecodeFault("BRIDGE_ERR_FRAME_DECODE", `${message} at byte ${pos}`);
}

/** A varint as a number when below 2^53, else as a bigint. */
function varint(): number | bigint {
  let lo = 0;
  let shift = 0;
  // The low 28 bits in plain arithmetic: nearly every varint ends here.
  while (shift < 28) {
    if (pos >= bytes.length) throw malformed("truncated varint");
    const b = bytes[pos++];
    lo |= (b & 0x7f) << shift;
    if (b < 0x80) return lo >>> 0;
    shift += 7;
  }
  let result = BigInt(lo >>> 0);
  let big = 28n;
  for (let i = 0; i < 6; i++) {
    if (pos >= bytes.length) throw malformed("truncated varint");
    const b = bytes[pos++];
    result |= BigInt(b & 0x7f) << big;
    if (b < 0x80) {
      result = BigInt.asUintN(64, result);
      return result <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(result) : result;
    }
    big += 7n;
  }
  throw malformed("varint longer than 10 bytes");
}

function smallVarint(): number {
  const n = varint();
  if (typeof n !== "number" || n > 0x7fffffff) throw malformed("length or tag out of range");
  return n;
}

/** The end of a length-delimited field that starts at `pos`. */
function lengthEnd(): number {
  const length = smallVarint();
  const end = pos + length;
  if (end > bytes.length) throw malformed("length runs past the frame");
  return end;
}

function text(): string {
  const end = lengthEnd();
  const start = pos;
  pos = end;
  // ASCII fast path: keys and ids are short and plain; TextDecoder's call overhead dominates for them.
  if (end - start < 24) {
    let s = "";
    for (let i = start; i < end; i++) {
      const b = bytes[i];
      if (b > 0x7f) return decodeText(start, end);
      s += String.fromCharCode(b);
    }
    return s;
  }
  return decodeText(start, end);
}

function decodeText(start: number, end: number): string {
  try {
    return utf8.decode(bytes.subarray(start, end));
  } catch {
    throw fault("BRIDGE_ERR_FRAME_DECODE", "text is not valid UTF-8");
  }
}

function byteString(): Uint8Array {
  const end = lengthEnd();
  const out = bytes.slice(pos, end);
  pos = end;
  return out;
}

function skip(wireType: number): void {
  switch (wireType) {
    case WIRE_VARINT:
      varint();
      return;
    case WIRE_I64:
      pos += 8;
      break;
    case WIRE_LEN:
      pos = lengthEnd();
      return;
    case WIRE_I32:
      pos += 4;
      break;
    default:
      throw malformed(`wire type ${wireType} is not accepted`);
  }
  if (pos > bytes.length) throw malformed("truncated field");
}

function readTag(): { number: number; wireType: number } {
  const t = smallVarint();
  const number = t >>> 3;
  if (number === 0) throw malformed("field number 0");
  return { number, wireType: t & 7 };
}

function expectWire(actual: number, expected: number): void {
  if (actual !== expected) throw fault("BRIDGE_ERR_FRAME_DECODE", `wire type ${actual} where ${expected} belongs`);
}

function sint64(): number | bigint {
  const z = varint();
  if (typeof z === "number") return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  return normalizeBigInt(z & 1n ? -((z + 1n) >> 1n) : z >> 1n);
}

/** Reads one `Value` message ending at `end`. */
function value(end: number, depth: number): unknown {
  let kind = 0;
  let result: unknown;
  while (pos < end) {
    const { number, wireType } = readTag();
    if (number > VALUE.float) {
      skip(wireType);
      continue;
    }
    if (kind !== 0 && kind !== number) throw fault("BRIDGE_ERR_FRAME_INVALID", "Value sets more than one kind");
    kind = number;
    switch (number) {
      case VALUE.null:
        expectWire(wireType, WIRE_VARINT);
        varint();
        result = null;
        break;
      case VALUE.bool:
        expectWire(wireType, WIRE_VARINT);
        result = varint() !== 0;
        break;
      case VALUE.int:
        expectWire(wireType, WIRE_VARINT);
        result = sint64();
        break;
      case VALUE.double:
      case VALUE.float: {
        const wide = number === VALUE.double;
        expectWire(wireType, wide ? WIRE_I64 : WIRE_I32);
        if (pos + (wide ? 8 : 4) > end) throw malformed("truncated number");
        const n = wide ? view.getFloat64(pos, true) : view.getFloat32(pos, true);
        pos += wide ? 8 : 4;
        if (!Number.isFinite(n)) throw fault("BRIDGE_ERR_FRAME_INVALID", "NaN and infinities are not accepted");
        result = n === 0 ? 0 : n;
        break;
      }
      case VALUE.string:
        expectWire(wireType, WIRE_LEN);
        result = text();
        break;
      case VALUE.bytes:
        expectWire(wireType, WIRE_LEN);
        result = byteString();
        break;
      case VALUE.posBignum:
      case VALUE.negBignum: {
        expectWire(wireType, WIRE_LEN);
        const magnitude = bytesToBigInt(byteString());
        result = normalizeBigInt(number === VALUE.posBignum ? magnitude : -1n - magnitude);
        break;
      }
      default: {
        // list_value or map_value
        expectWire(wireType, WIRE_LEN);
        if (depth > maxDepth) throw fault("BRIDGE_ERR_FRAME_TOO_DEEP", `nested deeper than ${maxDepth}`);
        const inner = lengthEnd();
        result = number === VALUE.list ? list(inner, depth) : map(inner, depth);
      }
    }
  }
  if (pos !== end) throw malformed("field runs past its message");
  if (kind === 0) throw fault("BRIDGE_ERR_FRAME_INVALID", "Value sets no kind");
  return result;
}

/** ListValue body ending at `end`, for a list at nesting `depth`. */
function list(end: number, depth: number): unknown[] {
  const out: unknown[] = [];
  while (pos < end) {
    const { number, wireType } = readTag();
    if (number !== 1) {
      skip(wireType);
      continue;
    }
    expectWire(wireType, WIRE_LEN);
    path.push(out.length);
    out.push(value(lengthEnd(), depth + 1));
    path.pop();
  }
  if (pos !== end) throw malformed("field runs past its message");
  return out;
}

/** MapValue body ending at `end`, for a map at nesting `depth`. */
function map(end: number, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  while (pos < end) {
    const { number, wireType } = readTag();
    if (number !== 1) {
      skip(wireType);
      continue;
    }
    expectWire(wireType, WIRE_LEN);
    const entryEnd = lengthEnd();
    let key = "";
    let entry: unknown;
    let hasValue = false;
    while (pos < entryEnd) {
      const t = readTag();
      if (t.number === 1) {
        expectWire(t.wireType, WIRE_LEN);
        key = text();
      } else if (t.number === 2) {
        expectWire(t.wireType, WIRE_LEN);
        const valueEnd = lengthEnd();
        // The key normally comes first; a value before it is held and checked once the key is known.
        path.push(key);
        entry = value(valueEnd, depth + 1);
        path.pop();
        hasValue = true;
      } else {
        skip(t.wireType);
      }
    }
    if (pos !== entryEnd) throw malformed("field runs past its message");
    path.push(key);
    if (!hasValue) throw fault("BRIDGE_ERR_FRAME_INVALID", "map entry without a value");
    if (key === "__proto__") throw fault("BRIDGE_ERR_FRAME_INVALID", "the map key __proto__ is not accepted");
    if (Object.hasOwn(out, key)) throw fault("BRIDGE_ERR_FRAME_INVALID", "duplicate map key");
    path.pop();
    out[key] = entry;
  }
  if (pos !== end) throw malformed("field runs past its message");
  return out;
}

/** A frame message (or nested message) ending at `end`, at nesting `depth` (the frame itself is 1). */
function message(layout: MessageLayout, end: number, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  while (pos < end) {
    const { number, wireType } = readTag();
    const f = layout.byNumber.get(number);
    if (f === undefined) {
      skip(wireType);
      continue;
    }
    expectWire(wireType, f.wireType);
    path.push(f.key);
    const kind = f.kind;
    switch (kind) {
      case "string":
      case "id":
      case "codec":
        out[f.key] = text();
        break;
      case "bool":
        out[f.key] = varint() !== 0;
        break;
      case "uint":
        out[f.key] = varint();
        break;
      case "number": {
        if (pos + 8 > end) throw malformed("truncated number");
        const n = view.getFloat64(pos, true);
        pos += 8;
        out[f.key] = n;
        break;
      }
      case "bytes":
        out[f.key] = byteString();
        break;
      case "value":
        out[f.key] = value(lengthEnd(), depth + 1);
        break;
      default: {
        if (depth + 1 > maxDepth) throw fault("BRIDGE_ERR_FRAME_TOO_DEEP", `nested deeper than ${maxDepth}`);
        const inner = lengthEnd();
        if (kind === "map") out[f.key] = map(inner, depth + 1);
        else if (kind === "list") out[f.key] = list(inner, depth + 1);
        else if ("object" in kind) out[f.key] = message(f.nested!, inner, depth + 1);
        else out[f.key] = records(f.nested!, inner, depth + 1);
      }
    }
    path.pop();
  }
  if (pos !== end) throw malformed("field runs past its message");
  // Implicit presence (proto3): an absent required scalar reads as its type's default.
  for (const f of layout.fields) {
    if (!f.required || Object.hasOwn(out, f.key)) continue;
    if (f.kind === "string" || f.kind === "id" || f.kind === "codec") out[f.key] = "";
    else if (f.kind === "bool") out[f.key] = false;
    else if (f.kind === "uint") out[f.key] = 0;
  }
  return out;
}

/** SenmlPack body: `repeated SenmlRecord records = 1`. */
function records(layout: MessageLayout, end: number, depth: number): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  while (pos < end) {
    const { number, wireType } = readTag();
    if (number !== 1) {
      skip(wireType);
      continue;
    }
    expectWire(wireType, WIRE_LEN);
    if (depth + 1 > maxDepth) throw fault("BRIDGE_ERR_FRAME_TOO_DEEP", `nested deeper than ${maxDepth}`);
    path.push(out.length);
    out.push(message(layout, lengthEnd(), depth + 1));
    path.pop();
  }
  if (pos !== end) throw malformed("field runs past its message");
  return out;
}

/**
 * Reads a `Frame` that must hold exactly the case `caseNumber` and returns its body as a map for `checkFrame`.
 * `describe` names a case number (empty for numbers that are no case), `topic` the expected channel, for the error
 * message. Throws DecodeFault.
 */
export function readPbFrame(
  input: Uint8Array,
  caseNumber: number,
  layout: MessageLayout,
  depthLimit: number,
  describe: (n: number) => string,
  topic: string,
): Record<string, unknown> {
  bytes = input;
  view = new DataView(input.buffer, input.byteOffset, input.byteLength);
  pos = 0;
  maxDepth = depthLimit;
  path.reset();
  try {
    let body: Record<string, unknown> | undefined;
    let other: number | undefined;
    while (pos < input.length) {
      const { number, wireType } = readTag();
      if (number === caseNumber) {
        expectWire(wireType, WIRE_LEN);
        body = message(layout, lengthEnd(), 1);
      } else if (number <= 15 && wireType === WIRE_LEN && describe(number) !== "") {
        other = number;
        skip(wireType);
      } else {
        skip(wireType);
      }
    }
    if (body === undefined || other !== undefined) {
      const holds = [
        body === undefined ? undefined : describe(caseNumber),
        other === undefined ? undefined : describe(other),
      ]
        .filter((x) => x !== undefined)
        .join(" and ");
      throw new DecodeFault(
        "BRIDGE_ERR_FRAME_INVALID",
        `protobuf Frame holds ${holds || "no body"}, the topic says ${topic}`,
      );
    }
    return body;
  } finally {
    bytes = EMPTY;
    view = EMPTY_VIEW;
  }
}
