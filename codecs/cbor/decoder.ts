/**
 * A strict, single-pass RFC 8949 decoder for untrusted device bytes. It accepts any well-formed encoding of a Value
 * (non-shortest heads and indefinite-length items included, as tinycbor and QCBOR may write them) and refuses, with
 * a typed fault, everything else: truncation, trailing bytes, reserved or break bytes out of place, invalid UTF-8,
 * non-text or duplicate map keys, tags other than 2/3 (bignums) and 55799 (self-described CBOR), `undefined` and
 * other simple values, non-finite floats, nesting deeper than the limit, and indefinite-length strings of more chunks
 * than MAX_STRING_CHUNKS (MAX_FRAME_STRING_CHUNKS for the whole frame). Lengths are checked against the bytes
 * left before anything is allocated, so a forged length cannot make it allocate more than the frame's size.
 */
import { MAX_FRAME_STRING_CHUNKS, MAX_STRING_CHUNKS } from "../limits.ts";
import { DecodeFault, DUPLICATE_MAP_KEY, fieldFault } from "../schema/fault.ts";
import { PathStack } from "../schema/path.ts";
import { bignumValue, MAX_INTEGER_DIGITS, normalizeBigInt } from "../schema/value.ts";
import { fromHalfBits } from "./float.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const TWO_32 = 2 ** 32;
const BREAK = Symbol("break");

const EMPTY = new Uint8Array(0);
const EMPTY_VIEW = new DataView(EMPTY.buffer);
let bytes: Uint8Array = EMPTY;
let view: DataView = EMPTY_VIEW;
let pos = 0;
let maxDepth = 16;
/** Chunks of indefinite-length strings read so far in this frame (bounded by MAX_FRAME_STRING_CHUNKS). */
let frameChunks = 0;
const path = new PathStack();

/** The current field path, or undefined at the top of the frame. */
function here(): string | undefined {
  const p = path.toString();
  return p === "" ? undefined : p;
}

function fault(
  code: "BRIDGE_ERR_FRAME_INVALID" | "BRIDGE_ERR_FRAME_DECODE" | "BRIDGE_ERR_FRAME_TOO_DEEP",
  message: string,
): DecodeFault {
  const field = here();
  return fieldFault(code, field, message);
}

function malformed(message: string): DecodeFault {
  return new DecodeFault("BRIDGE_ERR_FRAME_DECODE", `${message} at byte ${pos}`);
}

function need(n: number): void {
  if (pos + n > bytes.length) throw malformed("truncated CBOR item");
}

/** Reads the argument of a head whose additional info is `ai`: a number, or a bigint beyond 2^53. -1 = indefinite. */
function readArg(ai: number): number | bigint {
  if (ai < 24) return ai;
  switch (ai) {
    case 24:
      need(1);
      return bytes[pos++];
    case 25:
      need(2);
      pos += 2;
      return view.getUint16(pos - 2);
    case 26:
      need(4);
      pos += 4;
      return view.getUint32(pos - 4);
    case 27: {
      need(8);
      const hi = view.getUint32(pos);
      const lo = view.getUint32(pos + 4);
      pos += 8;
      if (hi < 0x200000) return hi * TWO_32 + lo;
      return (BigInt(hi) << 32n) | BigInt(lo);
    }
    case 31:
      return -1;
    default:
      pos--;
      throw malformed(`reserved additional information ${ai}`);
  }
}

/** A length (of a string, array or map) that must fit in what is left of the frame. */
function readLength(ai: number, minItemBytes: number): number {
  const n = readArg(ai);
  if (n === -1) return -1;
  if (typeof n === "bigint" || n * minItemBytes > bytes.length - pos) throw malformed("length runs past the frame");
  return n;
}

function readString(major: 2 | 3, ai: number): Uint8Array | string {
  const n = readLength(ai, 1);
  if (n === -1) {
    // Indefinite-length string: definite chunks of the same major type until a break (RFC 8949 section 3.2.3).
    const chunks: Uint8Array[] = [];
    for (;;) {
      need(1);
      const ib = bytes[pos++];
      if (ib === 0xff) break;
      if (ib >> 5 !== major || (ib & 31) === 31) throw malformed("bad chunk in an indefinite-length string");
      // Tiny chunks are a cheap amplification (a byte each on the wire, a head and a piece to join each to decode).
      if (chunks.length === MAX_STRING_CHUNKS) {
        throw fault(
          "BRIDGE_ERR_FRAME_INVALID",
          `an indefinite-length string of more than ${MAX_STRING_CHUNKS} chunks (the limit per string)`,
        );
      }
      if (++frameChunks > MAX_FRAME_STRING_CHUNKS) {
        throw fault(
          "BRIDGE_ERR_FRAME_INVALID",
          `indefinite-length strings of more than ${MAX_FRAME_STRING_CHUNKS} chunks in one frame (the limit per frame)`,
        );
      }
      const len = readLength(ib & 31, 1);
      // Each text chunk is a text string of its own, so no character may be split over two chunks. In valid UTF-8 a
      // character starts at any byte that is not a continuation byte (10xxxxxx), so checking where each chunk starts
      // and decoding the whole once is the same as decoding every chunk, at a fraction of the cost.
      if (major === 3 && len > 0 && (bytes[pos] & 0xc0) === 0x80) {
        throw fault("BRIDGE_ERR_FRAME_DECODE", "a text chunk splits a character");
      }
      chunks.push(bytes.subarray(pos, pos + len));
      pos += len;
    }
    const total = chunks.reduce((s, c) => s + c.length, 0);
    const joined = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) {
      joined.set(c, at);
      at += c.length;
    }
    return major === 2 ? joined : decodeText(joined);
  }
  const start = pos;
  pos += n;
  if (major === 2) return bytes.slice(start, pos);
  // ASCII fast path: short keys and ids dominate frames.
  if (n < 32) {
    let s = "";
    for (let i = start; i < pos; i++) {
      const b = bytes[i];
      if (b > 0x7f) return decodeText(bytes.subarray(start, pos));
      s += String.fromCharCode(b);
    }
    return s;
  }
  return decodeText(bytes.subarray(start, pos));
}

function decodeText(raw: Uint8Array): string {
  try {
    return utf8.decode(raw);
  } catch {
    throw fault("BRIDGE_ERR_FRAME_DECODE", "text string is not valid UTF-8");
  }
}

function enter(depth: number): void {
  if (depth > maxDepth) throw fault("BRIDGE_ERR_FRAME_TOO_DEEP", `nested deeper than ${maxDepth}`);
}

function readItem(depth: number): unknown {
  need(1);
  const ib = bytes[pos++];
  const major = ib >> 5;
  const ai = ib & 31;
  switch (major) {
    case 0: {
      const n = readArg(ai);
      if (n === -1) throw malformed("indefinite integer");
      return n;
    }
    case 1: {
      const n = readArg(ai);
      if (n === -1) throw malformed("indefinite integer");
      // -1 - n leaves the safe range already at n = 2^53 - 1: -2^53 is a bigint, as JSON and protobuf read it.
      return typeof n === "number" && n < Number.MAX_SAFE_INTEGER ? -1 - n : normalizeBigInt(-1n - BigInt(n));
    }
    case 2:
      return readString(2, ai);
    case 3:
      return readString(3, ai);
    case 4: {
      enter(depth);
      const n = readLength(ai, 1);
      const out: unknown[] = [];
      for (let i = 0; n === -1 || i < n; i++) {
        path.push(i);
        const item = readItem(depth + 1);
        path.pop();
        if (item === BREAK) {
          if (n === -1) break;
          throw malformed("break inside a definite-length array");
        }
        out.push(item);
      }
      return out;
    }
    case 5:
      enter(depth);
      return readMap(readLength(ai, 2), depth);
    case 6:
      return readTagged(ai, depth);
    default:
      return readSimple(ai);
  }
}

function readMap(n: number, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; n === -1 || i < n; i++) {
    const key = readItem(depth + 1);
    if (key === BREAK) {
      if (n === -1) break;
      throw malformed("break inside a definite-length map");
    }
    if (typeof key !== "string") throw fault("BRIDGE_ERR_FRAME_INVALID", "map keys must be text strings");
    path.push(key);
    if (key === "__proto__") throw fault("BRIDGE_ERR_FRAME_INVALID", "the map key __proto__ is not accepted");
    if (Object.hasOwn(out, key)) throw fault("BRIDGE_ERR_FRAME_INVALID", DUPLICATE_MAP_KEY);
    const value = readItem(depth + 1);
    if (value === BREAK) throw malformed("break in place of a map value");
    path.pop();
    out[key] = value;
  }
  return out;
}

function readTagged(ai: number, depth: number): unknown {
  if (ai === 31) throw malformed("a tag with an indefinite-length head");
  let tag = readArg(ai);
  // Self-described CBOR (tag 55799) may repeat; it is peeled off in a loop, so a run of them cannot deepen the stack.
  while (tag === 55799) {
    need(1);
    const ib = bytes[pos];
    // A tag holds a data item and a break is none: passed up, it would end the enclosing indefinite-length item.
    if (ib === 0xff) throw malformed("a tag over a break code");
    if (ib >> 5 !== 6) return readItem(depth);
    pos++;
    if ((ib & 31) === 31) throw malformed("a tag with an indefinite-length head");
    tag = readArg(ib & 31);
  }
  if (tag !== 2 && tag !== 3) throw fault("BRIDGE_ERR_FRAME_INVALID", `CBOR tag ${tag} is not accepted`);
  // The content must be a byte string; it is read directly rather than as any item, so tags cannot nest here.
  need(1);
  const ib = bytes[pos++];
  if (ib >> 5 !== 2) throw fault("BRIDGE_ERR_FRAME_INVALID", "a bignum tag must hold a byte string");
  const n = bignumValue(readString(2, ib & 31) as Uint8Array, tag === 3);
  if (n === undefined) throw fault("BRIDGE_ERR_FRAME_INVALID", `an integer of more than ${MAX_INTEGER_DIGITS} digits`);
  return n;
}

function readSimple(ai: number): unknown {
  let value: number;
  switch (ai) {
    case 20:
      return false;
    case 21:
      return true;
    case 22:
      return null;
    case 25:
      need(2);
      value = fromHalfBits(view.getUint16(pos));
      pos += 2;
      break;
    case 26:
      need(4);
      value = view.getFloat32(pos);
      pos += 4;
      break;
    case 27:
      need(8);
      value = view.getFloat64(pos);
      pos += 8;
      break;
    case 31:
      return BREAK;
    case 28:
    case 29:
    case 30:
      pos--;
      throw malformed(`reserved additional information ${ai}`);
    default:
      throw fault("BRIDGE_ERR_FRAME_INVALID", `CBOR simple value ${ai === 24 ? "(1-byte)" : ai} is not a Value`);
  }
  if (!Number.isFinite(value)) {
    throw fault("BRIDGE_ERR_FRAME_INVALID", "NaN and infinities are not accepted");
  }
  // -0 reads as 0: JSON cannot carry -0, so the codecs agree on 0.
  return value === 0 ? 0 : value;
}

/** `input` as a plain Uint8Array over the same memory (no copy). */
function plainView(input: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(input) === Uint8Array.prototype
    ? input
    : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
}

/** Decodes exactly one CBOR item filling `input`. Throws DecodeFault. */
export function decodeCborItem(input: Uint8Array, depthLimit: number): unknown {
  // A plain view: `slice` on a Node Buffer (an MQTT payload) returns a view, and a byte string must be a copy.
  bytes = plainView(input);
  view = new DataView(input.buffer, input.byteOffset, input.byteLength);
  pos = 0;
  maxDepth = depthLimit;
  frameChunks = 0;
  path.reset();
  try {
    const item = readItem(1);
    if (item === BREAK) throw malformed("break outside an indefinite-length item");
    if (pos !== input.length) throw malformed(`${input.length - pos} trailing bytes after the frame`);
    return item;
  } finally {
    // Do not keep the caller's buffer alive between calls.
    bytes = EMPTY;
    view = EMPTY_VIEW;
  }
}
