import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  cborCodec,
  decodeDownMessage,
  decodeUpMessage,
  encodeDownMessage,
  encodeUpMessage,
  pbCodec,
  resolveLimits,
} from "../../codecs/index.ts";
import { hasErrorCode } from "../../errors/index.ts";

describe("message helpers", () => {
  test("decode an up payload whose channel came from a topic into an UpMessage", () => {
    const bytes = encodeUpMessage(cborCodec, { channel: "rpc", frame: { id: "1", m: "ping" } });
    assert.deepStrictEqual(decodeUpMessage(cborCodec, "rpc", bytes), {
      ok: true,
      frame: { channel: "rpc", frame: { id: "1", m: "ping" } },
    });
  });

  test("decode a down payload into a DownMessage", () => {
    const bytes = encodeDownMessage(pbCodec, { channel: "error", frame: { code: "X", msg: "no" } });
    assert.deepStrictEqual(decodeDownMessage(pbCodec, "error", bytes), {
      ok: true,
      frame: { channel: "error", frame: { code: "X", msg: "no" } },
    });
  });

  test("answer an unknown or inherited channel name with BRIDGE_ERR_UNKNOWN_CHANNEL", () => {
    for (const channel of ["cmd", "constructor", "__proto__", ""]) {
      const result = decodeUpMessage(cborCodec, channel, new Uint8Array([0xa0]));
      assert.equal(result.ok, false);
      if (!result.ok) assert.equal(result.code, "BRIDGE_ERR_UNKNOWN_CHANNEL");
    }
    const down = decodeDownMessage(cborCodec, "hello", new Uint8Array([0xa0]));
    assert.equal(down.ok, false);
  });
});

describe("decode limits", () => {
  test("default to 64 KiB and depth 16, and merge a partial override", () => {
    assert.deepStrictEqual(resolveLimits(), { maxFrameBytes: 65536, maxDepth: 16 });
    assert.deepStrictEqual(resolveLimits({ maxDepth: 4 }), { maxFrameBytes: 65536, maxDepth: 4 });
  });

  test("throw BRIDGE_ERR_CONFIG naming the field for a bad limit", () => {
    const bad = [{ maxFrameBytes: 0 }, { maxFrameBytes: 1.5 }, { maxDepth: 0 }, { maxDepth: 33 }];
    for (const limits of bad) {
      assert.throws(
        () => resolveLimits(limits),
        (e) =>
          hasErrorCode(e, "BRIDGE_ERR_CONFIG") &&
          Object.keys(limits).includes(String((e as { details: { field: string } }).details.field)),
      );
    }
  });
});
