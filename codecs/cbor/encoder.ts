/**
 * A strict RFC 8949 encoder for `Value`s with preferred serialization: every length, integer and map header in its
 * shortest form, floats in the shortest lossless width, definite lengths only, no tags except 2/3 (bignums beyond
 * 64 bits). Written here rather than through cbor-x because cbor-x writes integers between 2^32 and 2^53 as float64
 * and every bigint as a full 8-byte integer, which a C firmware would have to special-case.
 */
import { bigintToBytes, checkKey, checkText, normalizeBigInt } from "../schema/value.ts";
import { DecodeFault, joinPath } from "../schema/fault.ts";
import { toHalfBits } from "./float.ts";

const TWO_32 = 2 ** 32;
const U64_LIMIT = 1n << 64n;

/** Encoder state; one module-level instance is reused because encoding is synchronous and never re-entered. */
// A Buffer so long strings are written in place by Node's native UTF-8 writer.
let buf = Buffer.allocUnsafe(4096);
let view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
let pos = 0;
let maxDepth = 16;

function ensure(n: number): void {
  if (pos + n <= buf.length) return;
  let size = buf.length * 2;
  while (size < pos + n) size *= 2;
  const next = Buffer.allocUnsafe(size);
  next.set(buf.subarray(0, pos));
  buf = next;
  view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
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

function writeNumber(v: number, field: string): void {
  if (!Number.isFinite(v)) throw new DecodeFault("BRIDGE_ERR_FRAME_INVALID", `${field}: must be finite`, field);
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
    writeNumber(small, "");
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

function writeText(s: string, field: string): void {
  const n = s.length;
  // Fast path for ASCII, the common case for keys and ids: byte length equals string length.
  if (n < 64) {
    let ascii = true;
    for (let i = 0; i < n; i++) {
      if (s.charCodeAt(i) > 0x7f) {
        ascii = false;
        break;
      }
    }
    if (ascii) {
      writeHead(3, n);
      ensure(n);
      for (let i = 0; i < n; i++) buf[pos++] = s.charCodeAt(i);
      return;
    }
  }
  checkText(s, field);
  const length = Buffer.byteLength(s, "utf8");
  writeHead(3, length);
  ensure(length);
  pos += buf.write(s, pos, length, "utf8");
}

function writeValue(v: unknown, depth: number, field: string): void {
  switch (typeof v) {
    case "number":
      writeNumber(v, field);
      return;
    case "string":
      writeText(v, field);
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
      if (depth > maxDepth) {
        throw new DecodeFault("BRIDGE_ERR_FRAME_TOO_DEEP", `${field}: nested deeper than ${maxDepth}`, field);
      }
      if (Array.isArray(v)) {
        writeHead(4, v.length);
        for (let i = 0; i < v.length; i++) writeValue(v[i], depth + 1, joinPath(field, i));
        return;
      }
      writeMap(v as Record<string, unknown>, depth, field);
      return;
    default:
      throw new DecodeFault("BRIDGE_ERR_FRAME_INVALID", `${field}: a ${typeof v} is not a Value`, field);
  }
}

function writeMap(map: Record<string, unknown>, depth: number, field: string): void {
  const keys = Object.keys(map);
  let count = 0;
  for (const k of keys) if (map[k] !== undefined) count++;
  writeHead(5, count);
  for (const k of keys) {
    const value = map[k];
    // An undefined property is an absent field, as in JSON.stringify.
    if (value === undefined) continue;
    const path = joinPath(field, k);
    checkKey(k, path);
    writeText(k, path);
    writeValue(value, depth + 1, path);
  }
}

/** Encodes a frame map (already checked against its schema). Throws DecodeFault on a bad Value. */
export function encodeCborMap(frame: Record<string, unknown>, depthLimit: number): Uint8Array {
  pos = 0;
  maxDepth = depthLimit;
  writeMap(frame, 1, "");
  // A copy, as a plain Uint8Array: the scratch buffer is reused by the next call.
  const out = new Uint8Array(pos);
  out.set(buf.subarray(0, pos));
  return out;
}
