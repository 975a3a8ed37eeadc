/**
 * Protobuf wire primitives for writing (varints, zigzag, length-delimited bodies) into one reusable buffer. Nested
 * bodies reserve one length byte and move in the rare case they grow past 127 bytes, so nothing is sized twice.
 */
import { type DecodeFault, fieldFault } from "../schema/fault.ts";
import { PathStack } from "../schema/path.ts";

import { isShortAscii, isWellFormedText } from "../text-utf8.ts";
export class WireWriter {
  private buf = new Uint8Array(4096);
  // A Buffer view of the same memory, so long strings are written in place by Node's native UTF-8 writer.
  private nodeBuf = Buffer.from(this.buf.buffer);
  private view = new DataView(this.buf.buffer);
  private pos = 0;
  /** Where the walk is, for error messages. */
  readonly path = new PathStack();

  reset(): void {
    this.pos = 0;
    this.path.reset();
  }

  /** A copy of what was written: the buffer is reused by the next frame. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }

  fault(code: "BRIDGE_ERR_FRAME_INVALID" | "BRIDGE_ERR_FRAME_TOO_DEEP", message: string): DecodeFault {
    const field = this.path.toString();
    return fieldFault(code, field || undefined, message);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.nodeBuf = Buffer.from(next.buffer);
    this.view = new DataView(next.buffer);
  }

  /** One byte: a tag below 16 or a bool. */
  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  /** A varint of a non-negative safe integer. */
  varint(n: number): void {
    this.ensure(10);
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.pos++] = n;
  }

  private varintBig(n: bigint): void {
    this.ensure(10);
    while (n >= 0x80n) {
      this.buf[this.pos++] = Number(n & 0x7fn) | 0x80;
      n >>= 7n;
    }
    this.buf[this.pos++] = Number(n);
  }

  /** sint64: zigzag (2n for n >= 0, -2n-1 below), then varint. */
  sint64(n: number | bigint): void {
    if (typeof n === "number" && n < 2 ** 51 && n > -(2 ** 51)) {
      this.varint(n >= 0 ? n * 2 : -n * 2 - 1);
      return;
    }
    const b = BigInt(n);
    this.varintBig(b >= 0n ? b << 1n : (-b << 1n) - 1n);
  }

  double(v: number): void {
    this.ensure(8);
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  float(v: number): void {
    this.ensure(4);
    this.view.setFloat32(this.pos, v, true);
    this.pos += 4;
  }

  /** Starts a length-delimited body; returns where its one-byte length placeholder is. */
  open(): number {
    this.ensure(1);
    return this.pos++;
  }

  /** Ends a body opened at `at`, widening the length to a multi-byte varint (moving the body) when needed. */
  close(at: number): void {
    const length = this.pos - at - 1;
    if (length < 0x80) {
      this.buf[at] = length;
      return;
    }
    let extra = 0;
    for (let n = length; n >= 0x80; n = Math.floor(n / 0x80)) extra++;
    this.ensure(extra);
    this.buf.copyWithin(at + 1 + extra, at + 1, this.pos);
    let n = length;
    let p = at;
    while (n >= 0x80) {
      this.buf[p++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[p] = n;
    this.pos += extra;
  }

  /** A length-prefixed UTF-8 string. */
  text(s: string): void {
    if (isShortAscii(s)) {
      const n = s.length;
      this.varint(n);
      this.ensure(n);
      for (let i = 0; i < n; i++) this.buf[this.pos++] = s.charCodeAt(i);
      return;
    }
    if (!isWellFormedText(s)) {
      throw this.fault("BRIDGE_ERR_FRAME_INVALID", "text holds a lone surrogate");
    }
    const length = Buffer.byteLength(s, "utf8");
    this.varint(length);
    this.ensure(length);
    this.pos += this.nodeBuf.write(s, this.pos, length, "utf8");
  }

  /** A length-prefixed byte string. */
  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
}
