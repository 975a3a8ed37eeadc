import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  type CodecName,
  cborCodec,
  getCodec,
  jsonCodec,
  negotiateCodec,
  pbCodec,
  sniffCodec,
} from "../../codecs/index.ts";
import { hasErrorCode } from "../../errors/index.ts";

describe("negotiateCodec", () => {
  test("prefers the topic suffix, then the last hello, then the registry record, then the default", () => {
    assert.deepStrictEqual(negotiateCodec({ topicCodec: "json", helloCodec: "pb", registryCodec: "cbor" }), {
      codec: "json",
      source: "topic",
    });
    assert.deepStrictEqual(negotiateCodec({ helloCodec: "pb", registryCodec: "json" }), {
      codec: "pb",
      source: "hello",
    });
    assert.deepStrictEqual(negotiateCodec({ registryCodec: "json" }), { codec: "json", source: "registry" });
    assert.deepStrictEqual(negotiateCodec({}), { codec: "cbor", source: "default" });
    assert.deepStrictEqual(negotiateCodec({ defaultCodec: "pb" }), { codec: "pb", source: "default" });
  });

  test("skips unknown codec names instead of failing", () => {
    const corrupt = "xml" as CodecName;
    assert.deepStrictEqual(negotiateCodec({ helloCodec: corrupt, registryCodec: corrupt }), {
      codec: "cbor",
      source: "default",
    });
  });
});

describe("sniffCodec", () => {
  test("tells the three encodings of a hello apart by their first byte", () => {
    const hello = { fw: "1.0", codec: "pb" as const };
    assert.equal(sniffCodec(jsonCodec.encodeUp("hello", hello)), "json");
    assert.equal(sniffCodec(cborCodec.encodeUp("hello", hello)), "cbor");
    assert.equal(sniffCodec(pbCodec.encodeUp("hello", hello)), "pb");
    assert.equal(sniffCodec(new TextEncoder().encode(' {"fw":"1"}')), "json");
    assert.equal(sniffCodec(new Uint8Array([0xd9, 0xd9, 0xf7, 0xa0])), "cbor");
  });

  test("gives undefined for empty or unrecognisable payloads", () => {
    assert.equal(sniffCodec(new Uint8Array(0)), undefined);
    assert.equal(sniffCodec(new Uint8Array([0x00])), undefined);
    assert.equal(sniffCodec(new Uint8Array([0xff])), undefined);
  });
});

describe("getCodec", () => {
  test("returns each codec by name with its media type and binary flag", () => {
    assert.equal(getCodec("json").mediaType, "application/json");
    assert.equal(getCodec("json").binary, false);
    assert.equal(getCodec("cbor").binary, true);
    assert.equal(getCodec("pb").binary, true);
  });

  test("throws BRIDGE_ERR_UNKNOWN_CODEC for an unknown name", () => {
    assert.throws(
      () => getCodec("xml" as CodecName),
      (e) => hasErrorCode(e, "BRIDGE_ERR_UNKNOWN_CODEC"),
    );
    assert.throws(
      () => getCodec("toString" as CodecName),
      (e) => hasErrorCode(e, "BRIDGE_ERR_UNKNOWN_CODEC"),
    );
  });
});
