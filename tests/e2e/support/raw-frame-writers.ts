/**
 * Writers of up frames in each codec's wire form, independent of the codecs under test and of their validation: a
 * frame is a list of entries (so a key may appear twice) of raw values that may be of the wrong type, non-finite,
 * beyond every integer bound, or text with lone surrogates (written as the 3-byte sequences UTF-8 forbids). What comes
 * out is well formed at the wire level (a CBOR item, JSON text, protobuf fields) and decides nothing about validity:
 * the bridge's own decoder is the oracle of what it refuses.
 */
import type { CodecName, UpChannel } from "../../../codecs/index.ts";

/** A value as the wire carries it, before any validation. Entries of a map may repeat a key. */
export type RawValue =
  | { t: "null" }
  | { t: "bool"; v: boolean }
  | { t: "int"; v: bigint }
  | { t: "float"; v: number }
  | { t: "text"; v: string }
  | { t: "bytes"; v: Uint8Array }
  | { t: "list"; v: RawValue[] }
  | { t: "map"; v: RawEntry[] };
export type RawEntry = readonly [string, RawValue];

/** UTF-8 of `text`, with each lone surrogate written as its own 3-byte sequence (invalid UTF-8, as WTF-8 does). */
export function looseUtf8(text: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    const next = text.charCodeAt(i + 1);
    if (c >= 0xd800 && c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
      i += 1;
    }
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return Uint8Array.from(out);
}

function magnitude(n: bigint): Uint8Array {
  const hex = n.toString(16);
  return Uint8Array.from(Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, "hex"));
}

// ---------- CBOR (RFC 8949) ----------

function cborHead(major: number, n: bigint, out: number[]): void {
  const m = major << 5;
  if (n < 24n) out.push(m | Number(n));
  else if (n < 0x100n) out.push(m | 24, Number(n));
  else if (n < 0x10000n) out.push(m | 25, Number(n >> 8n), Number(n & 0xffn));
  else if (n < 0x100000000n) {
    out.push(m | 26);
    for (let s = 24n; s >= 0n; s -= 8n) out.push(Number((n >> s) & 0xffn));
  } else {
    out.push(m | 27);
    for (let s = 56n; s >= 0n; s -= 8n) out.push(Number((n >> s) & 0xffn));
  }
}

function cborValue(value: RawValue, out: number[]): void {
  switch (value.t) {
    case "null":
      out.push(0xf6);
      return;
    case "bool":
      out.push(value.v ? 0xf5 : 0xf4);
      return;
    case "int": {
      const major = value.v >= 0n ? 0 : 1;
      const arg = value.v >= 0n ? value.v : -1n - value.v;
      if (arg < 1n << 64n) {
        cborHead(major, arg, out);
        return;
      }
      // Beyond 64 bits: a bignum, tag 2 or 3 over the magnitude bytes.
      out.push(major === 0 ? 0xc2 : 0xc3);
      const bytes = magnitude(arg);
      cborHead(2, BigInt(bytes.length), out);
      for (const b of bytes) out.push(b);
      return;
    }
    case "float": {
      const buf = Buffer.alloc(8);
      buf.writeDoubleBE(value.v);
      out.push(0xfb, ...buf);
      return;
    }
    case "text": {
      const bytes = looseUtf8(value.v);
      cborHead(3, BigInt(bytes.length), out);
      for (const b of bytes) out.push(b);
      return;
    }
    case "bytes":
      cborHead(2, BigInt(value.v.length), out);
      for (const b of value.v) out.push(b);
      return;
    case "list":
      cborHead(4, BigInt(value.v.length), out);
      for (const item of value.v) cborValue(item, out);
      return;
    case "map":
      cborHead(5, BigInt(value.v.length), out);
      for (const [key, item] of value.v) {
        cborValue({ t: "text", v: key }, out);
        cborValue(item, out);
      }
      return;
  }
}

// ---------- JSON ----------

function jsonNumber(v: number): string {
  // JSON has no NaN; an exponent beyond a double's range is the nearest well-formed stand-in for the infinities.
  if (Number.isNaN(v)) return "null";
  if (v === Number.POSITIVE_INFINITY) return "1e999";
  if (v === Number.NEGATIVE_INFINITY) return "-1e999";
  if (Object.is(v, -0)) return "-0.0";
  return Number.isInteger(v) && Math.abs(v) < 1e21 ? `${v}.0` : String(v);
}

function jsonValue(value: RawValue): string {
  switch (value.t) {
    case "null":
      return "null";
    case "bool":
      return String(value.v);
    case "int":
      return value.v.toString();
    case "float":
      return jsonNumber(value.v);
    case "text":
      return JSON.stringify(value.v);
    case "bytes":
      return `{"$bytes":${JSON.stringify(Buffer.from(value.v).toString("base64"))}}`;
    case "list":
      return `[${value.v.map(jsonValue).join(",")}]`;
    case "map":
      return `{${value.v.map(([k, item]) => `${JSON.stringify(k)}:${jsonValue(item)}`).join(",")}}`;
  }
}

// ---------- protobuf (codecs/bridge.proto) ----------

type PbKind = "string" | "uint64" | "bool" | "double" | "bytes" | "value" | "map" | "list" | "strings" | "values";
type PbFields = Record<string, readonly [number, PbKind | "senml"]>;

/** The up messages' fields, by frame key, from bridge.proto. */
const PB_FIELDS: Record<UpChannel, PbFields> = {
  hello: {
    fw: [1, "string"],
    codec: [2, "string"],
    sync: [3, "bool"],
    stream: [4, "bool"],
    maxFrame: [5, "uint64"],
    metrics: [6, "strings"],
  },
  telemetry: { ts: [1, "uint64"], r: [2, "map"], senml: [3, "senml"], rv: [4, "values"] },
  state: { v: [1, "uint64"], s: [2, "map"] },
  ack: { id: [1, "string"], ok: [2, "bool"], res: [3, "value"], err: [4, "string"] },
  rpc: { id: [1, "string"], m: [2, "string"], a: [3, "list"] },
  reason: { id: [1, "string"], q: [2, "string"], max: [3, "uint64"], stream: [4, "bool"] },
};
const PB_SENML: PbFields = {
  bn: [1, "string"],
  bt: [2, "double"],
  n: [3, "string"],
  u: [4, "string"],
  v: [5, "double"],
  vs: [6, "string"],
  vb: [7, "bool"],
  vd: [8, "bytes"],
  t: [9, "double"],
};
const PB_FRAME_FIELD: Record<UpChannel, number> = { hello: 1, telemetry: 2, state: 3, ack: 4, rpc: 5, reason: 6 };
/** Where a key the .proto does not know is written: a field number no up message uses. */
const PB_UNKNOWN_FIELD = 15;

function varint(n: bigint, out: number[]): void {
  let x = BigInt.asUintN(64, n);
  while (x >= 0x80n) {
    out.push(Number((x & 0x7fn) | 0x80n));
    x >>= 7n;
  }
  out.push(Number(x));
}

const tag = (field: number, wireType: number, out: number[]) => varint(BigInt((field << 3) | wireType), out);

function lengthDelimited(field: number, bytes: readonly number[] | Uint8Array, out: number[]): void {
  tag(field, 2, out);
  varint(BigInt(bytes.length), out);
  for (const b of bytes) out.push(b);
}

function double(field: number, v: number, out: number[]): void {
  tag(field, 1, out);
  const buf = Buffer.alloc(8);
  buf.writeDoubleLE(v);
  out.push(...buf);
}

/** A `Value` message. */
function pbValue(value: RawValue): number[] {
  const out: number[] = [];
  switch (value.t) {
    case "null":
      tag(1, 0, out);
      out.push(0);
      break;
    case "bool":
      tag(2, 0, out);
      out.push(value.v ? 1 : 0);
      break;
    case "int":
      if (value.v >= -(1n << 63n) && value.v < 1n << 63n) {
        tag(3, 0, out);
        varint(value.v >= 0n ? value.v << 1n : (-value.v << 1n) - 1n, out);
      } else lengthDelimited(value.v >= 0n ? 9 : 10, magnitude(value.v >= 0n ? value.v : -1n - value.v), out);
      break;
    case "float":
      double(4, value.v, out);
      break;
    case "text":
      lengthDelimited(5, looseUtf8(value.v), out);
      break;
    case "bytes":
      lengthDelimited(6, value.v, out);
      break;
    case "list":
      lengthDelimited(7, pbList(value.v), out);
      break;
    case "map":
      lengthDelimited(8, pbMap(value.v), out);
      break;
  }
  return out;
}

function pbList(items: readonly RawValue[]): number[] {
  const out: number[] = [];
  for (const item of items) lengthDelimited(1, pbValue(item), out);
  return out;
}

function pbMap(entries: readonly RawEntry[]): number[] {
  const out: number[] = [];
  for (const [key, item] of entries) {
    const entry: number[] = [];
    lengthDelimited(1, looseUtf8(key), entry);
    lengthDelimited(2, pbValue(item), entry);
    lengthDelimited(1, entry, out);
  }
  return out;
}

/** A raw value in the wire form of its own type: how a field of the wrong type reaches the decoder. */
function pbNatural(field: number, value: RawValue, out: number[]): void {
  switch (value.t) {
    case "null":
      tag(field, 0, out);
      out.push(0);
      return;
    case "bool":
      tag(field, 0, out);
      out.push(value.v ? 1 : 0);
      return;
    case "int":
      tag(field, 0, out);
      varint(value.v, out);
      return;
    case "float":
      double(field, value.v, out);
      return;
    case "text":
      lengthDelimited(field, looseUtf8(value.v), out);
      return;
    case "bytes":
      lengthDelimited(field, value.v, out);
      return;
    case "list":
      lengthDelimited(field, pbList(value.v), out);
      return;
    case "map":
      lengthDelimited(field, pbMap(value.v), out);
      return;
  }
}

function pbField(field: number, kind: PbKind | "senml", value: RawValue, out: number[]): void {
  if (kind === "value") {
    lengthDelimited(field, pbValue(value), out);
    return;
  }
  if (kind === "double" && value.t === "int") {
    double(field, Number(value.v), out);
    return;
  }
  if (kind === "strings" && value.t === "list") {
    for (const item of value.v) pbNatural(field, item, out);
    return;
  }
  if (kind === "values" && value.t === "list") {
    for (const item of value.v) lengthDelimited(field, pbValue(item), out);
    return;
  }
  if (kind === "senml" && value.t === "list") {
    const pack: number[] = [];
    for (const record of value.v) {
      if (record.t === "map") lengthDelimited(1, pbMessage(PB_SENML, record.v), pack);
      else pbNatural(1, record, pack);
    }
    lengthDelimited(field, pack, out);
    return;
  }
  pbNatural(field, value, out);
}

function pbMessage(fields: PbFields, entries: readonly RawEntry[]): number[] {
  const out: number[] = [];
  for (const [key, value] of entries) {
    const known = fields[key];
    if (known === undefined) pbNatural(PB_UNKNOWN_FIELD, value, out);
    else pbField(known[0], known[1], value, out);
  }
  return out;
}

/** The bytes of an up frame of `channel` made of `entries`, in `codec`'s wire form. */
export function writeRawFrame(codec: CodecName, channel: UpChannel, entries: readonly RawEntry[]): Uint8Array {
  if (codec === "json") return new TextEncoder().encode(jsonValue({ t: "map", v: [...entries] }));
  const out: number[] = [];
  if (codec === "cbor") cborValue({ t: "map", v: [...entries] }, out);
  else lengthDelimited(PB_FRAME_FIELD[channel], pbMessage(PB_FIELDS[channel], entries), out);
  return Uint8Array.from(out);
}
