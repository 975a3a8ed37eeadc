/**
 * Writes the JSON-ready tree of json-value.ts as text, for the rare frame that holds an integral float beyond 2^53
 * (`2 ** 60`, `1e20`). `JSON.stringify` writes such a number as an integer token (`1152921504606846976`), which the
 * decoder reads as the exact integer, a `bigint` (json-parse.ts); this writer gives it an exponent
 * (`1.152921504606847e+18`), so it stays a float on the way back, as it does in CBOR and protobuf.
 */

/** True for a number that `JSON.stringify` would write as an integer token beyond ±(2^53-1). */
export function isIntegralFloat(n: number): boolean {
  return Number.isInteger(n) && !Number.isSafeInteger(n);
}

/** JSON text of a tree of null, booleans, finite numbers, strings, arrays and plain objects. */
export function writeJson(v: unknown): string {
  if (typeof v === "number") return isIntegralFloat(v) ? v.toExponential() : JSON.stringify(v);
  if (typeof v !== "object" || v === null) return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(writeJson).join(",")}]`;
  const map = v as Record<string, unknown>;
  return `{${Object.keys(map)
    .map((key) => `${JSON.stringify(key)}:${writeJson(map[key])}`)
    .join(",")}}`;
}
