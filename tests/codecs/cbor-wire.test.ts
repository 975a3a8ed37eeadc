/**
 * CBOR wire details beyond the shared contract: preferred serialization (RFC 8949 section 4.2.2), interoperability
 * with an independent decoder (cbor-x), and liberal reading of well-formed but non-preferred input.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decode as cborXDecode } from "cbor-x";
import fc from "fast-check";
import { cborCodec, type DecodeResult, type Value } from "../../codecs/index.ts";
import { value } from "./arbitraries.ts";
import { hex } from "./raw-writers.ts";
import { normalizeBigInt } from "../../codecs/schema/value.ts";
import { MAX_FRAME_STRING_CHUNKS, MAX_STRING_CHUNKS } from "../../codecs/limits.ts";
import { decodeCborItem } from "../../codecs/cbor/decoder.ts";
import { DecodeFault } from "../../codecs/schema/fault.ts";

/** The hex of an ack frame whose `res` is `res`, minus the fixed prefix, i.e. the encoding of `res` alone. */
function encodeRes(res: Value): string {
  const full = Buffer.from(cborCodec.encodeUp("ack", { id: "a", ok: true, res })).toString("hex");
  const prefix = "a3626964616162" + "6f6bf5" + "63726573";
  assert.ok(full.startsWith(prefix), full);
  return full.slice(prefix.length);
}

function decodedRes(resHex: string): DecodeResult<unknown> {
  const result = cborCodec.decodeUp("ack", hex(`a3 626964 6161 626f6b f5 637265 73 ${resHex}`));
  return result.ok ? { ok: true, frame: result.frame.res } : result;
}

describe("CBOR preferred serialization", () => {
  const cases: [string, Value, string][] = [
    ["a small map", { a: 1, b: 2 }, "a2616101616202"],
    ["an integer below 24 in one byte", 23, "17"],
    ["an integer of 24 with a one-byte argument", 24, "1818"],
    ["a negative integer", -25, "3818"],
    ["a 16-bit integer", 65535, "19ffff"],
    ["a 32-bit integer", 2 ** 32 - 1, "1affffffff"],
    ["an integer beyond 2^32 as a 64-bit integer, not a float", 2 ** 40, "1b0000010000000000"],
    ["the largest safe integer", Number.MAX_SAFE_INTEGER, "1b001fffffffffffff"],
    ["a bigint within 64 bits", 2n ** 63n, "1b8000000000000000"],
    ["a bigint beyond 64 bits as tag 2", 2n ** 64n, "c249010000000000000000"],
    ["a negative bigint beyond 64 bits as tag 3", -(2n ** 64n) - 1n, "c349010000000000000000"],
    ["a half-precision float", 1.5, "f93e00"],
    ["a half-precision subnormal", 2 ** -24, "f90001"],
    ["a single-precision float", 100000.5, "fa47c35040"],
    ["a double that no shorter width holds", 0.1, "fb3fb999999999999a"],
    ["-0 as the integer 0", -0, "00"],
    ["a 23-byte string with a one-byte head", "x".repeat(23), `77${"78".repeat(23)}`],
    ["a 24-byte string with a two-byte head", "x".repeat(24), `7818${"78".repeat(24)}`],
    ["a non-ASCII string by its UTF-8 length", "é", "62c3a9"],
    ["a byte string", new Uint8Array([1, 2]), "420102"],
    ["an array", [true, false, null], "83f5f4f6"],
  ];
  for (const [name, res, expected] of cases) {
    test(`writes ${name}`, () => {
      assert.equal(encodeRes(res), expected);
    });
  }

  test("writes a 256-entry map with a two-byte head", () => {
    const map: Record<string, Value> = {};
    for (let i = 0; i < 256; i++) map[`k${i}`] = i;
    assert.ok(encodeRes(map).startsWith("b90100"));
  });
});

describe("CBOR interoperability", () => {
  test("bytes the bridge writes decode to the same values with an independent decoder (cbor-x)", () => {
    fc.assert(
      fc.property(value, (res) => {
        const bytes = cborCodec.encodeUp("ack", { id: "a", ok: true, res });
        const other = cborXDecode(Buffer.from(bytes)) as { res: unknown };
        // cbor-x reads every 64-bit integer as a bigint; the bridge keeps safe integers as numbers.
        const normalise = (x: unknown): unknown =>
          typeof x === "bigint"
            ? normalizeBigInt(x)
            : x instanceof Uint8Array
              ? new Uint8Array(x)
              : Array.isArray(x)
                ? x.map(normalise)
                : x !== null && typeof x === "object"
                  ? Object.fromEntries(Object.entries(x).map(([k, v]) => [k, normalise(v)]))
                  : x;
        assert.deepStrictEqual(normalise(other.res), res);
      }),
      { seed: 11, numRuns: 300 },
    );
  });
});

describe("CBOR liberal reading", () => {
  const accepted: [string, string, unknown][] = [
    ["a non-preferred integer head", "1a00000005", 5],
    ["a non-preferred map head", "b90001616101", { a: 1 }],
    ["a float64 that is an integer", "fb4014000000000000", 5],
    ["an indefinite-length array", "9f0102ff", [1, 2]],
    ["an indefinite-length map", "bf616101ff", { a: 1 }],
    ["an indefinite-length text string", "7f616161626163ff", "abc"],
    ["an indefinite-length byte string", "5f4101420203ff", new Uint8Array([1, 2, 3])],
    ["an indefinite-length text string of multi-byte characters", "7f62c3a962c3a9ff", "éé"],
    ["a self-described CBOR tag", "d9d9f705", 5],
    ["a small bignum as a number", "c24105", 5],
    ["a 64-bit integer beyond 2^53 as a bigint", "1b0020000000000001", 2n ** 53n + 1n],
    ["the most negative 64-bit integer as a bigint", "3bffffffffffffffff", -(2n ** 64n)],
    ["the most negative safe integer as a number", "3b001ffffffffffffe", Number.MIN_SAFE_INTEGER],
    // -1 - (2^53 - 1): the argument is safe, the integer is not; JSON and protobuf read it as a bigint too.
    ["-2^53 as a bigint", "3b001fffffffffffff", -(2n ** 53n)],
  ];
  for (const [name, resHex, expected] of accepted) {
    test(`accepts ${name}`, () => {
      assert.deepStrictEqual(decodedRes(resHex), { ok: true, frame: expected });
    });
  }

  const refused: [string, string, string][] = [
    ["undefined", "f7", "BRIDGE_ERR_FRAME_INVALID"],
    ["an unassigned simple value", "f0", "BRIDGE_ERR_FRAME_INVALID"],
    ["infinity", "f97c00", "BRIDGE_ERR_FRAME_INVALID"],
    ["a bignum tag over a text string", "c26161", "BRIDGE_ERR_FRAME_INVALID"],
    ["an indefinite string with a chunk of another type", "7f4161ff", "BRIDGE_ERR_FRAME_DECODE"],
    ["an indefinite integer", "1f", "BRIDGE_ERR_FRAME_DECODE"],
    // RFC 8949 section 3.2.3: a text chunk is itself a text string, so a character cannot be spread over two chunks.
    ["an indefinite text string whose chunks split a character", "7f 61 c3 61 a9 ff", "BRIDGE_ERR_FRAME_DECODE"],
    // Section 3.2.4 (3.4 for tags): only arrays, maps and strings have indefinite lengths.
    ["a tag with an indefinite-length head", "df 41 00", "BRIDGE_ERR_FRAME_DECODE"],
    ["a break inside a definite array", "82 01 ff", "BRIDGE_ERR_FRAME_DECODE"],
    ["an indefinite array without its break", "9f 01", "BRIDGE_ERR_FRAME_DECODE"],
    // A tag holds one data item; a break is none, so a tagged break cannot end an indefinite-length item.
    ["a self-described tag over the break of an indefinite array", "9f 01 d9d9f7 ff", "BRIDGE_ERR_FRAME_DECODE"],
    ["a self-described tag over the break of an indefinite map", "bf 6161 01 d9d9f7 ff", "BRIDGE_ERR_FRAME_DECODE"],
  ];
  for (const [name, resHex, code] of refused) {
    test(`refuses ${name} with ${code}`, () => {
      const result = decodedRes(resHex);
      assert.equal(result.ok, false);
      if (!result.ok) assert.equal(result.code, code, result.message);
    });
  }

  test("a refusal at a field carries its path and its bare problem apart from the message", () => {
    // {"a": [{"b": 1, "b": 2}]}: a key twice, two levels down.
    assert.throws(
      () => decodeCborItem(hex("a1 6161 81 a2 6162 01 6162 02"), 16),
      (err: unknown) =>
        err instanceof DecodeFault &&
        err.field === "a[0].b" &&
        err.problem === "duplicate map key" &&
        err.message === "a[0].b: duplicate map key",
    );
  });

  // An indefinite-length string of tiny chunks is a cheap amplification: each chunk is one byte on the wire but a
  // head to read and a piece to join. Measured on the development machine (decodeCborItem, 64 KiB frame): 65 000
  // empty chunks took ~12 ms and 32 000 one-byte chunks ~4.7 ms, against ~0.02 ms for the same text in one piece and
  // ~3 ms for the worst ordinary frame. With the limits, the costliest frame (4 strings of 1024 chunks, accepted, or
  // 64 KiB of 1000-chunk strings, refused at chunk 4097) takes ~0.3 ms; the 65 000 empty chunks are refused in ~0.08 ms.
  /** An indefinite-length text string of `chunks` one-byte chunks ("a" each), as hex. */
  const chunkedText = (chunks: number) => `7f${"6161".repeat(chunks)}ff`;

  test(`accepts an indefinite-length string of ${MAX_STRING_CHUNKS} chunks, the limit per string`, () => {
    assert.deepStrictEqual(decodedRes(chunkedText(MAX_STRING_CHUNKS)), {
      ok: true,
      frame: "a".repeat(MAX_STRING_CHUNKS),
    });
    const bytes = decodedRes(`5f${"4101".repeat(MAX_STRING_CHUNKS)}ff`);
    assert.deepStrictEqual(bytes, { ok: true, frame: new Uint8Array(MAX_STRING_CHUNKS).fill(1) });
  });

  test("refuses an indefinite-length string of one chunk more than the limit, naming the limit and the field", () => {
    for (const resHex of [chunkedText(MAX_STRING_CHUNKS + 1), `5f${"40".repeat(MAX_STRING_CHUNKS + 1)}ff`]) {
      const result = decodedRes(resHex);
      assert.deepStrictEqual(result, {
        ok: false,
        code: "BRIDGE_ERR_FRAME_INVALID",
        message: `res: an indefinite-length string of more than ${MAX_STRING_CHUNKS} chunks (the limit per string)`,
        field: "res",
      });
    }
  });

  test("refuses a frame whose indefinite-length strings hold more chunks together than the limit per frame", () => {
    const perString = MAX_STRING_CHUNKS;
    const strings = Math.floor(MAX_FRAME_STRING_CHUNKS / perString);
    const atLimit = `9f${chunkedText(perString).repeat(strings)}ff`;
    const within = decodedRes(atLimit);
    assert.equal(within.ok, true, within.ok ? "" : within.message);
    const result = decodedRes(`9f${chunkedText(perString).repeat(strings)}${chunkedText(1)}ff`);
    assert.deepStrictEqual(result, {
      ok: false,
      code: "BRIDGE_ERR_FRAME_INVALID",
      message: `res[${strings}]: indefinite-length strings of more than ${MAX_FRAME_STRING_CHUNKS} chunks in one frame (the limit per frame)`,
      field: `res[${strings}]`,
    });
  });

  test("refuses a 64 KiB frame of empty string chunks at the per-string limit, before reading the rest", () => {
    const bytes = new Uint8Array(
      Buffer.concat([hex("a3 626964 6161 626f6b f5 637265 73 7f"), Buffer.alloc(65000, 0x60)]),
    );
    const result = cborCodec.decodeUp("ack", bytes);
    assert.equal(result.ok, false);
    if (!result.ok) assert.equal(result.code, "BRIDGE_ERR_FRAME_INVALID", result.message);
  });

  test("peels any run of self-described CBOR tags without deepening the stack", () => {
    const prefix = Buffer.from("d9d9f7".repeat(20000), "hex");
    const bytes = new Uint8Array(Buffer.concat([prefix, Buffer.from("a1626677613f", "hex")]));
    assert.deepStrictEqual(cborCodec.decodeUp("hello", bytes), { ok: true, frame: { fw: "?" } });
  });

  test("refuses 64 KiB of nested bignum tags as a bad bignum, not as a stack overflow", () => {
    const bytes = new Uint8Array(Buffer.concat([Buffer.from("a1617281", "hex"), Buffer.alloc(65000, 0xc2)]));
    const result = cborCodec.decodeUp("telemetry", bytes);
    assert.equal(result.ok, false);
    if (!result.ok) assert.equal(result.code, "BRIDGE_ERR_FRAME_INVALID", result.message);
  });

  test("refuses 64 KiB of nested arrays as too deep without exhausting the stack", () => {
    const bytes = new Uint8Array(65536).fill(0x81);
    const result = cborCodec.decodeUp("telemetry", bytes);
    assert.equal(result.ok, false);
    if (!result.ok) assert.equal(result.code, "BRIDGE_ERR_FRAME_TOO_DEEP");
  });
});
