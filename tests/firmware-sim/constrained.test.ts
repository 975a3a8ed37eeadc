import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { cborCodec, jsonCodec, pbCodec } from "../../codecs/index.ts";
import { looksLikeJsonText } from "../../firmware-sim/index.ts";
import { getProfile } from "../../firmware-sim/profiles/index.ts";

describe("constrained device", () => {
  const cmd = { id: "c-1", n: "set", a: { mode: "cool", target: 21.5, list: [1, 2, 3] } };

  it("recognises a JSON text frame", () => {
    assert.equal(looksLikeJsonText(jsonCodec.encodeDown("cmd", cmd)), true);
    assert.equal(looksLikeJsonText(new TextEncoder().encode('  \n["a", 1]')), true);
    assert.equal(looksLikeJsonText(new TextEncoder().encode('"just a string"')), true);
  });

  it("never mistakes a CBOR or protobuf frame for JSON", () => {
    for (const codec of [cborCodec, pbCodec]) {
      assert.equal(looksLikeJsonText(codec.encodeDown("cmd", cmd)), false, codec.name);
      assert.equal(
        looksLikeJsonText(codec.encodeDown("reason", { id: "r", seq: 1, text: '{"x":1}' })),
        false,
        codec.name,
      );
      assert.equal(looksLikeJsonText(codec.encodeDown("state", { v: 3, d: { "{": "[" } })), false, codec.name);
    }
  });

  it("does not call bytes that merely start with a brace JSON", () => {
    assert.equal(looksLikeJsonText(new Uint8Array([0x7b, 0xff, 0x00])), false);
    assert.equal(looksLikeJsonText(new Uint8Array([])), false);
  });

  it("announces binary only, a small max frame and no streaming", () => {
    const profile = getProfile("constrained");
    assert.equal(profile.binaryOnly, true);
    assert.equal(profile.streams, false);
    assert.ok(profile.maxFrameBytes !== undefined && profile.maxFrameBytes <= 512);
  });
});
