/**
 * A strict RFC 8949 encoder for `Value`s with preferred serialization: every length, integer and map header in its
 * shortest form, floats in the shortest lossless width, definite lengths only, no tags except 2/3 (bignums beyond
 * 64 bits). Written here rather than through cbor-x because cbor-x writes integers between 2^32 and 2^53 as float64
 * and every bigint as a full 8-byte integer, which a C firmware would have to special-case.
 */
import { bigintToBytes, isIntegerInBounds, MAX_INTEGER_DIGITS, normalizeBigInt } from "../schema/value.ts";
import { type DecodeFault, fieldFault } from "../schema/fault.ts";
import { PathStack } from "../schema/path.ts";
import { toHalfBits } from "./float.ts";
import { isShortAscii, isWellFormedText } from "../text-utf8.ts";

const TWO_32 = 2 ** 32;
const U64_LIMIT = 1n << 64n;

/** Encoder state; one module-level instance is reused because encoding is synchronous and never re-entered. */
let buf = new Uint8Array(4096);
// A Buffer view of the same memory, so long strings are written in place by Node's native UTF-8 writer.
let nodeBuf = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
let view = new DataView(buf.buffer);
let pos = 0;
let maxDepth = 16;
const path = new PathStack();

function fault(code: "BRIDGE_ERR_FRAME_INVALID" | "BRIDGE_ERR_FRAME_TOO_DEEP", message: string): DecodeFault {
  const field = path.toString();
  return fieldFault(code, field || undefined, message);
}

function ensure(n: number): void {
  if (pos + n <= buf.length) return;
  let size = buf.length * 2;
  while (size < pos + n) size *= 2;
  const next = new Uint8Array(size);
  next.set(buf.subarray(0, pos));
  buf = next;
  nodeBuf = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  view = new DataView(buf.buffer);
}

/** Writes a major type with its argument in the shortest form. `arg` is a non-negative safe integer. */
function writeHead(major: number, arg: number): void {
  ensure(9);
  const m = major << 5;
  if (arg < 24) {
    buf[pos++] = m | arg;
  } else if (arg < 0x100) {
    buf[pos++] = m | 24;
    buf[pos++] = arg;
  } else if (arg < 0x10000) {
    buf[pos++] = m | 25;
    view.setUint16(pos, arg);
    pos += 2;
  } else if (arg < TWO_32) {
    buf[pos++] = m | 26;
    view.setUint32(pos, arg);
    pos += 4;
  } else {
    buf[pos++] = m | 27;
    view.setUint32(pos, Math.floor(arg / TWO_32));
    view.setUint32(pos + 4, arg >>> 0);
    pos += 8;
  }
}

function writeNumber(v: number): void {
  if (!Number.isFinite(v)) throw fault("BRIDGE_ERR_FRAME_INVALID", "must be finite");
  if (Number.isSafeInteger(v)) {
    if (v >= 0) writeHead(0, v);
    else writeHead(1, -1 - v);
    return;
  }
  ensure(9);
  if (Math.fround(v) === v) {
    const half = toHalfBits(v);
    if (half !== undefined) {
      buf[pos++] = 0xf9;
      view.setUint16(pos, half);
      pos += 2;
      return;
    }
    buf[pos++] = 0xfa;
    view.setFloat32(pos, v);
    pos += 4;
    return;
  }
  buf[pos++] = 0xfb;
  view.setFloat64(pos, v);
  pos += 8;
}

function writeBigInt(n: bigint): void {
  const small = normalizeBigInt(n);
  if (typeof small === "number") {
    writeNumber(small);
    return;
  }
  if (n >= 0n && n < U64_LIMIT) {
    ensure(9);
    buf[pos++] = 0x1b;
    view.setBigUint64(pos, n);
    pos += 8;
    return;
  }
  if (n < 0n && n >= -U64_LIMIT) {
    ensure(9);
    buf[pos++] = 0x3b;
    view.setBigUint64(pos, -1n - n);
    pos += 8;
    return;
  }
  if (!isIntegerInBounds(n))
    throw fault("BRIDGE_ERR_FRAME_INVALID", `an integer of more than ${MAX_INTEGER_DIGITS} digits`);
  // RFC 8949 section 3.4.3: tag 2 holds n, tag 3 holds -1-n, as big-endian magnitude bytes.
  ensure(1);
  buf[pos++] = n >= 0n ? 0xc2 : 0xc3;
  writeBytes(bigintToBytes(n >= 0n ? n : -1n - n));
}

function writeBytes(bytes: Uint8Array): void {
  writeHead(2, bytes.length);
  ensure(bytes.length);
  buf.set(bytes, pos);
  pos += bytes.length;
}

function writeText(s: string): void {
  // Fast path for ASCII, the common case for keys and ids: byte length equals string length.
  if (isShortAscii(s)) {
    const n = s.length;
    writeHead(3, n);
    ensure(n);
    for (let i = 0; i < n; i++) buf[pos++] = s.charCodeAt(i);
    return;
  }
  if (!isWellFormedText(s)) {
    throw fault("BRIDGE_ERR_FRAME_INVALID", "text holds a lone surrogate");
  }
  const length = Buffer.byteLength(s, "utf8");
  writeHead(3, length);
  ensure(length);
  pos += nodeBuf.write(s, pos, length, "utf8");
}

function writeValue(v: unknown, depth: number): void {
  switch (typeof v) {
    case "number":
      writeNumber(v);
      return;
    case "string":
      writeText(v);
      return;
    case "boolean":
      ensure(1);
      buf[pos++] = v ? 0xf5 : 0xf4;
      return;
    case "bigint":
      writeBigInt(v);
      return;
    case "object":
      if (v === null) {
        ensure(1);
        buf[pos++] = 0xf6;
        return;
      }
      if (v instanceof Uint8Array) {
        writeBytes(v);
        return;
      }
      if (depth > maxDepth) throw fault("BRIDGE_ERR_FRAME_TOO_DEEP", `nested deeper than ${maxDepth}`);
      if (Array.isArray(v)) {
        writeHead(4, v.length);
        for (let i = 0; i < v.length; i++) {
          path.push(i);
          writeValue(v[i], depth + 1);
          path.pop();
        }
        return;
      }
      writeMap(v as Record<string, unknown>, depth);
      return;
    default:
      throw fault("BRIDGE_ERR_FRAME_INVALID", `a ${typeof v} is not a Value`);
  }
}

function writeMap(map: Record<string, unknown>, depth: number): void {
  const keys = Object.keys(map);
  let count = 0;
  for (const k of keys) if (map[k] !== undefined) count++;
  writeHead(5, count);
  for (const k of keys) {
    const value = map[k];
    // An undefined property is an absent field, as in JSON.stringify.
    if (value === undefined) continue;
    path.push(k);
    if (k === "__proto__") throw fault("BRIDGE_ERR_FRAME_INVALID", "the map key __proto__ is not accepted");
    writeText(k);
    writeValue(value, depth + 1);
    path.pop();
  }
}

/** Encodes a frame map (already checked against its schema). Throws DecodeFault on a bad Value. */
export function encodeCborMap(frame: Record<string, unknown>, depthLimit: number): Uint8Array {
  pos = 0;
  maxDepth = depthLimit;
  path.reset();
  writeMap(frame, 1);
  // A copy: the scratch buffer is reused by the next call.
  return buf.slice(0, pos);
}
