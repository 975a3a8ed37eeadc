/** JSON wire details beyond the shared contract: the documented forms of byte strings and big integers. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type DecodeResult, jsonCodec, type Value } from "../../codecs/index.ts";

const text = (s: string) => new TextEncoder().encode(s);
const asText = (b: Uint8Array) => new TextDecoder().decode(b);

function decodeRes(resJson: string): DecodeResult<unknown> {
  const result = jsonCodec.decodeUp("ack", text(`{"id":"a","ok":true,"res":${resJson}}`));
  return result.ok ? { ok: true, frame: result.frame.res } : result;
}

describe("JSON representation of values", () => {
  const cases: [string, Value, string][] = [
    ["byte strings as padded base64 under $bytes", new Uint8Array([0xde, 0xad, 0xbe, 0xef]), '{"$bytes":"3q2+7w=="}'],
    ["integers beyond 2^53 as decimal text under $bigint", 2n ** 64n + 5n, '{"$bigint":"18446744073709551621"}'],
    ["safe bigints as plain numbers", 5n, "5"],
    ["a map whose only key is reserved, escaped under $map", { $bytes: "x" }, '{"$map":{"$bytes":"x"}}'],
    ["a map with a reserved key among others as it is", { $bytes: "x", y: 1 }, '{"$bytes":"x","y":1}'],
  ];
  for (const [name, res, json] of cases) {
    test(`writes ${name} and reads them back`, () => {
      const bytes = jsonCodec.encodeUp("ack", { id: "a", ok: true, res });
      assert.equal(asText(bytes), `{"id":"a","ok":true,"res":${json}}`);
      assert.deepStrictEqual(decodeRes(json), {
        ok: true,
        frame: typeof res === "bigint" && res < 2n ** 53n ? Number(res) : res,
      });
    });
  }

  const refused: [string, string][] = [
    ["unpadded base64", '{"$bytes":"3q2+7w"}'],
    ["base64url", '{"$bytes":"3q2-7w=="}'],
    ["a $bytes that is not text", '{"$bytes":5}'],
    ["a $bigint with a leading zero", '{"$bigint":"01"}'],
    ["a $bigint that is a number", '{"$bigint":5}'],
    ["a $map that is not a map", '{"$map":[1]}'],
    ["a lone surrogate", '"\\ud800"'],
    ["a lone surrogate in a key", '{"\\udc00":1}'],
  ];
  for (const [name, json] of refused) {
    test(`refuses ${name} with BRIDGE_ERR_FRAME_INVALID`, () => {
      const result = decodeRes(json);
      assert.equal(result.ok, false);
      if (!result.ok) assert.equal(result.code, "BRIDGE_ERR_FRAME_INVALID", result.message);
    });
  }

  test("refuses 64 KiB of nested arrays as too deep without exhausting the stack", () => {
    const result = jsonCodec.decodeUp("telemetry", text(`{"r":${"[".repeat(65000)}`));
    assert.equal(result.ok, false);
    const deep = jsonCodec.decodeUp("telemetry", text(`{"r":{"a":${"[".repeat(30000)}${"]".repeat(30000)}}}`));
    assert.equal(deep.ok, false);
    if (!deep.ok) assert.equal(deep.code, "BRIDGE_ERR_FRAME_TOO_DEEP");
  });

  test("reads a JSON object with a __proto__ key as refused data, not as a prototype", () => {
    const result = jsonCodec.decodeDown("state", text('{"v":1,"d":{"__proto__":{"admin":true}}}'));
    assert.equal(result.ok, false);
    if (!result.ok) assert.equal(result.field, "d.__proto__");
  });
});
