/**
 * Half-precision (binary16) conversions for CBOR's preferred serialization of floats (RFC 8949 section 4.2.2):
 * a float is written in the shortest of 16, 32 or 64 bits that keeps its value exactly.
 */
const scratch = new DataView(new ArrayBuffer(4));

/** The binary16 bits of `v` when `v` (already exact as a float32) is exactly representable, else undefined. */
export function toHalfBits(v: number): number | undefined {
  scratch.setFloat32(0, v);
  const bits = scratch.getUint32(0);
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0 && mant === 0) return sign;
  const e = exp - 127;
  if (e >= -14 && e <= 15) {
    if ((mant & 0x1fff) !== 0) return undefined;
    return sign | ((e + 15) << 10) | (mant >>> 13);
  }
  if (e >= -24 && e < -14) {
    // Subnormal half: value = m * 2^-24 with m < 1024; the float32 significand must shift right without loss.
    const full = mant | 0x800000;
    const shift = -(e + 1);
    if ((full & ((1 << shift) - 1)) !== 0) return undefined;
    return sign | (full >>> shift);
  }
  return undefined;
}

/** The number held by binary16 bits. */
export function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}
