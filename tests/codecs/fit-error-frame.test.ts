/**
 * An error frame fitted to a device's maxFrame, in each codec: whole when it fits, its message cut on a character
 * boundary when it does not, nothing when not even the code fits.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { fitErrorFrame } from "../../codecs/fit-error-frame.ts";
import type { ErrorFrame } from "../../codecs/frames.ts";
import { ALL_CODECS } from "../../codecs/index.ts";

// Two-, three- and four-byte UTF-8 characters, so a cut lands inside one at most byte lengths.
const MESSAGE = "température ≥ 30 °C 🌡️ ".repeat(8);
const FRAME: ErrorFrame = { code: "BRIDGE_ERR_FRAME_INVALID", msg: MESSAGE, id: "q-1" };

for (const codec of ALL_CODECS) {
  const bytes = (frame: ErrorFrame): number => codec.encodeDown("error", frame).byteLength;

  describe(`fitErrorFrame in ${codec.name}`, () => {
    test("a frame that fits, or a connection without a limit, keeps its message whole", () => {
      assert.equal(fitErrorFrame(codec, FRAME, bytes(FRAME)), FRAME);
      assert.equal(fitErrorFrame(codec, FRAME, null), FRAME);
    });

    test("at every limit between the empty message and the whole one, the longest prefix that fits", () => {
      for (let max = bytes({ ...FRAME, msg: "" }); max < bytes(FRAME); max++) {
        const fitted = fitErrorFrame(codec, FRAME, max);
        assert.ok(fitted !== undefined, `max ${max}`);
        assert.deepEqual({ ...fitted, msg: "" }, { ...FRAME, msg: "" }, "code and id kept");
        assert.ok(bytes(fitted) <= max, `max ${max}: ${bytes(fitted)} bytes`);
        assert.ok(MESSAGE.startsWith(fitted.msg) && !fitted.msg.includes("\ufffd"), `max ${max}: ${fitted.msg}`);
        // The prefix one character longer (a whole one: never half a surrogate pair) must not fit.
        const nextChar = String.fromCodePoint(MESSAGE.codePointAt(fitted.msg.length) ?? 0);
        assert.ok(bytes({ ...FRAME, msg: fitted.msg + nextChar }) > max, `max ${max}: a longer prefix fits`);
      }
    });

    test("a limit that cannot hold even the code gets nothing", () => {
      assert.equal(fitErrorFrame(codec, FRAME, bytes({ ...FRAME, msg: "" }) - 1), undefined);
    });
  });
}
