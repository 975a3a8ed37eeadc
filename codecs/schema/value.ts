/**
 * Helpers shared by the codecs' walks over `Value`s, so all three agree on what a Value is:
 * integers within ±(2^53-1) are numbers, integers beyond are bigints; numbers are finite; `-0` is `0`;
 * map keys are text and never `__proto__` (refused so that no consumer's `Object.assign` can be tricked).
 */
import { fieldFault } from "./fault.ts";

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);

/** The canonical form of an integer: a number when it is safe, else the bigint. */
export function normalizeBigInt(n: bigint): number | bigint {
  return n <= MAX_SAFE && n >= MIN_SAFE ? Number(n) : n;
}

/** Refuses `__proto__` as a map key (see the module comment). */
export function checkKey(key: string, field: string): void {
  if (key === "__proto__") {
    throw fieldFault("BRIDGE_ERR_FRAME_INVALID", field, "the map key __proto__ is not accepted");
  }
}

/** `String.prototype.isWellFormed` (Node 20) is newer than the project's ES2023 lib typings. */
type WellFormedString = string & { isWellFormed(): boolean };

/** Refuses text that is not well-formed Unicode (lone surrogates cannot be written as UTF-8). */
export function checkText(text: string, field: string): void {
  if (!(text as WellFormedString).isWellFormed()) {
    throw fieldFault("BRIDGE_ERR_FRAME_INVALID", field, "text holds a lone surrogate");
  }
}

/** Big-endian magnitude bytes of a non-negative bigint, without leading zeros (CBOR tags 2/3, protobuf bignums). */
export function bigintToBytes(n: bigint): Uint8Array {
  let hex = n.toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** The non-negative bigint of big-endian magnitude bytes. */
export function bytesToBigInt(bytes: Uint8Array): bigint {
  let hex = "0x0";
  for (const b of bytes) hex += b.toString(16).padStart(2, "0");
  return BigInt(hex);
}

/**
 * Most decimal digits of an integer Value, in every codec and both ways: JSON's integer tokens and `$bigint` text
 * were bounded so first, and CBOR and protobuf bignums are bounded alike, so an integer one codec accepts can be
 * carried by the others (a JSON client, the operator API) and a device cannot make the bridge turn a 64 KiB bignum
 * into 150 KB of decimal text.
 */
export const MAX_INTEGER_DIGITS = 4001;
const INTEGER_BOUND = 10n ** BigInt(MAX_INTEGER_DIGITS);
/** 10^4001 < 2^13296 = 256^1662: a magnitude with more significant bytes is out of bounds before it is converted. */
const MAX_MAGNITUDE_BYTES = 1662;

/** True when `n` has at most MAX_INTEGER_DIGITS decimal digits. */
export function isIntegerInBounds(n: bigint): boolean {
  return n < INTEGER_BOUND && n > -INTEGER_BOUND;
}

/**
 * The integer of a bignum (CBOR tags 2/3, protobuf pos_bignum/neg_bignum) in its canonical form: `magnitude`, or
 * `-1 - magnitude` when `negative`. Undefined when it has more than MAX_INTEGER_DIGITS digits.
 */
export function bignumValue(magnitude: Uint8Array, negative: boolean): number | bigint | undefined {
  let start = 0;
  while (start < magnitude.length && magnitude[start] === 0) start++;
  if (magnitude.length - start > MAX_MAGNITUDE_BYTES) return undefined;
  const m = bytesToBigInt(magnitude.subarray(start));
  const n = negative ? -1n - m : m;
  return isIntegerInBounds(n) ? normalizeBigInt(n) : undefined;
}
