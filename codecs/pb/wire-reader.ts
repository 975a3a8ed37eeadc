/**
 * Protobuf wire primitives for reading untrusted bytes: varints (refusing over-long ones), lengths checked against
 * the bytes left, strict UTF-8, skipping unknown fields (refusing groups and reserved wire types).
 */
import { DecodeFault, fieldFault } from "../schema/fault.ts";
import { PathStack } from "../schema/path.ts";
import { normalizeBigInt } from "../schema/value.ts";
import { WIRE_I32, WIRE_I64, WIRE_LEN, WIRE_VARINT } from "./layout.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const EMPTY = new Uint8Array(0);
const EMPTY_VIEW = new DataView(EMPTY.buffer);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

type Code = "BRIDGE_ERR_FRAME_INVALID" | "BRIDGE_ERR_FRAME_DECODE" | "BRIDGE_ERR_FRAME_TOO_DEEP";

export class WireReader {
  private bytes: Uint8Array = EMPTY;
  private view: DataView = EMPTY_VIEW;
  pos = 0;
  /** Where the walk is, for error messages. */
  readonly path = new PathStack();

  get length(): number {
    return this.bytes.length;
  }

  reset(input: Uint8Array): void {
    // A plain view: `slice` on a Node Buffer (an MQTT payload) returns a view, and `byteString` must copy.
    this.bytes =
      Object.getPrototypeOf(input) === Uint8Array.prototype
        ? input
        : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    this.view = new DataView(input.buffer, input.byteOffset, input.byteLength);
    this.pos = 0;
    this.path.reset();
  }

  /** Drops the caller's buffer so it is not kept alive between frames. */
  release(): void {
    this.bytes = EMPTY;
    this.view = EMPTY_VIEW;
  }

  fault(code: Code, message: string): DecodeFault {
    const field = this.path.toString();
    return fieldFault(code, field || undefined, message);
  }

  malformed(message: string): DecodeFault {
    return new DecodeFault("BRIDGE_ERR_FRAME_DECODE", `${message} at byte ${this.pos}`);
  }

  /** A varint as a number when below 2^53, else as a bigint. */
  varint(): number | bigint {
    const bytes = this.bytes;
    let lo = 0;
    // The low 28 bits in plain arithmetic: nearly every varint ends here.
    for (let shift = 0; shift < 28; shift += 7) {
      if (this.pos >= bytes.length) throw this.malformed("truncated varint");
      const b = bytes[this.pos++];
      lo |= (b & 0x7f) << shift;
      if (b < 0x80) return lo >>> 0;
    }
    let result = BigInt(lo >>> 0);
    for (let shift = 28n; shift < 70n; shift += 7n) {
      if (this.pos >= bytes.length) throw this.malformed("truncated varint");
      const b = bytes[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) {
        result = BigInt.asUintN(64, result);
        return result <= MAX_SAFE ? Number(result) : result;
      }
    }
    throw this.malformed("varint longer than 10 bytes");
  }

  /** A tag or length: a varint that must fit 31 bits. */
  small(): number {
    const n = this.varint();
    if (typeof n !== "number" || n > 0x7fffffff) throw this.malformed("length or tag out of range");
    return n;
  }

  /** A field key; its field number is `tag >>> 3`, its wire type `tag & 7`. */
  tag(): number {
    const t = this.varint();
    // Field numbers run from 1 to 2^29-1, so a key fits 32 bits; an unknown field of any of them is skipped.
    if (typeof t !== "number" || t > 0xffffffff) throw this.malformed("field number beyond 2^29-1");
    if (t >>> 3 === 0) throw this.malformed("field number 0");
    return t;
  }

  expectWire(tag: number, expected: number): void {
    if ((tag & 7) !== expected) {
      throw this.fault("BRIDGE_ERR_FRAME_DECODE", `wire type ${tag & 7} where ${expected} belongs`);
    }
  }

  /** Reads a length and returns the end of the body it announces. */
  lengthEnd(): number {
    const length = this.small();
    const end = this.pos + length;
    if (end > this.bytes.length) throw this.malformed("length runs past the frame");
    return end;
  }

  /** Checks that a message ended exactly at its announced end. */
  endAt(end: number): void {
    if (this.pos !== end) throw this.malformed("field runs past its message");
  }

  sint64(): number | bigint {
    const z = this.varint();
    if (typeof z === "number") return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
    return normalizeBigInt(z & 1n ? -((z + 1n) >> 1n) : z >> 1n);
  }

  double(end: number): number {
    if (this.pos + 8 > end) throw this.malformed("truncated number");
    this.pos += 8;
    return this.view.getFloat64(this.pos - 8, true);
  }

  float(end: number): number {
    if (this.pos + 4 > end) throw this.malformed("truncated number");
    this.pos += 4;
    return this.view.getFloat32(this.pos - 4, true);
  }

  text(): string {
    const end = this.lengthEnd();
    const start = this.pos;
    this.pos = end;
    const bytes = this.bytes;
    // ASCII fast path: keys and ids are short and plain; TextDecoder's call overhead dominates for them.
    if (end - start < 24) {
      let s = "";
      for (let i = start; i < end; i++) {
        const b = bytes[i];
        if (b > 0x7f) return this.decodeText(start, end);
        s += String.fromCharCode(b);
      }
      return s;
    }
    return this.decodeText(start, end);
  }

  private decodeText(start: number, end: number): string {
    try {
      return utf8.decode(this.bytes.subarray(start, end));
    } catch {
      throw this.fault("BRIDGE_ERR_FRAME_DECODE", "text is not valid UTF-8");
    }
  }

  /** A length-prefixed byte string, copied so the frame does not pin the packet. */
  byteString(): Uint8Array {
    const end = this.lengthEnd();
    const out = this.bytes.slice(this.pos, end);
    this.pos = end;
    return out;
  }

  /** Skips the value of a field with key `tag`. */
  skip(tag: number): void {
    switch (tag & 7) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_I64:
        this.pos += 8;
        break;
      case WIRE_LEN:
        this.pos = this.lengthEnd();
        return;
      case WIRE_I32:
        this.pos += 4;
        break;
      default:
        throw this.malformed(`wire type ${tag & 7} is not accepted`);
    }
    if (this.pos > this.bytes.length) throw this.malformed("truncated field");
  }
}
