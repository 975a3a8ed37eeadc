/**
 * An error frame fitted to a device's maxFrame, in each codec: whole when it fits, its message cut in the middle on
 * character boundaries when it does not (its beginning and end kept around an ellipsis), empty when not even that
 * fits, nothing when not even the code fits.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ELLIPSIS } from "../../codecs/cut-text.ts";
import { fitErrorFrame } from "../../codecs/fit-error-frame.ts";
import type { ErrorFrame } from "../../codecs/frames.ts";
import { ALL_CODECS } from "../../codecs/index.ts";

// Two-, three- and four-byte UTF-8 characters, so a cut lands inside one at most byte lengths, at either end.
const MESSAGE = "température ≥ 30 °C 🌡️ ".repeat(8);
const FRAME: ErrorFrame = { code: "BRIDGE_ERR_FRAME_INVALID", msg: MESSAGE, id: "q-1" };
// As the codecs word a fault at a field: the path (here holding a device's own 300-character key), then the rule.
const LONG_PATH_MESSAGE = `s.${"k".repeat(300)}.a: duplicate map key`;

/** The kept beginning and end of a cut message; fails unless it is one of `whole`'s head…tail forms. */
function headAndTail(whole: string, msg: string): { head: string; tail: string } {
  const at = msg.indexOf(ELLIPSIS);
  assert.ok(at >= 0 && msg.indexOf(ELLIPSIS, at + 1) < 0, `one ellipsis in ${msg}`);
  const head = msg.slice(0, at);
  const tail = msg.slice(at + 1);
  assert.ok(whole.startsWith(head) && whole.endsWith(tail), `${msg} is not ${whole} cut in the middle`);
  assert.ok(head.length + tail.length < whole.length, "something was cut");
  assert.ok(!/\p{Cs}/u.test(msg) && !msg.includes("\ufffd"), `no character split: ${msg}`);
  return { head, tail };
}

/** The whole character before index `at` of `text` and the one from it (never half a surrogate pair). */
function charBefore(text: string, at: number): string {
  const code = text.charCodeAt(at - 1);
  return text.slice(code >= 0xdc00 && code <= 0xdfff ? at - 2 : at - 1, at);
}
function charFrom(text: string, at: number): string {
  return String.fromCodePoint(text.codePointAt(at) ?? 0);
}

for (const codec of ALL_CODECS) {
  const bytes = (frame: ErrorFrame): number => codec.encodeDown("error", frame).byteLength;

  describe(`fitErrorFrame in ${codec.name}`, () => {
    test("a frame that fits, or a connection without a limit, keeps its message whole", () => {
      assert.equal(fitErrorFrame(codec, FRAME, bytes(FRAME)), FRAME);
      assert.equal(fitErrorFrame(codec, FRAME, null), FRAME);
    });

    test("at every limit below the whole message, the longest head…tail form that fits, head and tail alike", () => {
      const empty = bytes({ ...FRAME, msg: "" });
      for (let max = empty; max < bytes(FRAME); max++) {
        const fitted = fitErrorFrame(codec, FRAME, max);
        assert.ok(fitted !== undefined, `max ${max}`);
        assert.deepEqual({ ...fitted, msg: "" }, { ...FRAME, msg: "" }, "code and id kept");
        assert.ok(bytes(fitted) <= max, `max ${max}: ${bytes(fitted)} bytes`);
        const fitsWith = (msg: string): boolean => bytes({ ...FRAME, msg }) <= max;
        if (fitted.msg === "") {
          // Nothing is said only when not even one character and the ellipsis fit: the frame is as small as before.
          assert.ok(!fitsWith(`${charFrom(MESSAGE, 0)}${ELLIPSIS}`), `max ${max}: a head fits`);
          assert.ok(!fitsWith(`${ELLIPSIS}${charBefore(MESSAGE, MESSAGE.length)}`), `max ${max}: a tail fits`);
          continue;
        }
        const { head, tail } = headAndTail(MESSAGE, fitted.msg);
        // Neither one more whole character at the head nor at the tail fits.
        const cutEnd = MESSAGE.length - tail.length;
        if (head.length + tail.length + 1 < MESSAGE.length) {
          const longerHead = head + charFrom(MESSAGE, head.length);
          assert.ok(!fitsWith(`${longerHead}${ELLIPSIS}${tail}`), `max ${max}: a longer head fits`);
          const longerTail = charBefore(MESSAGE, cutEnd) + tail;
          assert.ok(!fitsWith(`${head}${ELLIPSIS}${longerTail}`), `max ${max}: a longer tail fits`);
        }
        // About half each: apart by at most a few characters' bytes the character boundaries left over.
        const apart = Buffer.byteLength(tail) - Buffer.byteLength(head);
        assert.ok(Math.abs(apart) <= 12, `max ${max}: head ${head}, tail ${tail}`);
      }
    });

    test("a long field path then the rule: the rule survives the cut, the path's beginning too", () => {
      const frame: ErrorFrame = { code: "BRIDGE_ERR_FRAME_INVALID", msg: LONG_PATH_MESSAGE };
      const fitted = fitErrorFrame(codec, frame, 256);
      assert.ok(fitted !== undefined);
      assert.ok(bytes(fitted) <= 256 && bytes(fitted) > 240, `${bytes(fitted)} bytes`);
      const { head, tail } = headAndTail(LONG_PATH_MESSAGE, fitted.msg);
      assert.ok(head.startsWith("s.kkk"), head);
      assert.ok(tail.endsWith(".a: duplicate map key"), tail);
    });

    test("a cut inside a multi-byte character at either end keeps that character whole or leaves it out", () => {
      // The head's cut and the tail's fall inside a 4-byte emoji and a 3-byte "≥" at some limit: every limit is tried.
      // A quote, a backslash and a newline cost JSON two bytes each: the encoded size is not the byte length.
      const msg = `🌡️"${"é".repeat(40)}\n≥\\${"🌡️".repeat(20)}`;
      const frame: ErrorFrame = { code: "BRIDGE_ERR_FRAME_INVALID", msg };
      for (let max = bytes({ ...frame, msg: "" }); max < bytes(frame); max++) {
        const fitted = fitErrorFrame(codec, frame, max);
        assert.ok(fitted !== undefined && bytes(fitted) <= max, `max ${max}`);
        if (fitted.msg !== "") headAndTail(msg, fitted.msg);
      }
    });

    test("a limit that cannot hold even the code gets nothing", () => {
      assert.equal(fitErrorFrame(codec, FRAME, bytes({ ...FRAME, msg: "" }) - 1), undefined);
    });

    test("a limit that holds the code but not the ellipsis gets an empty message, not a bare prefix", () => {
      const max = bytes({ ...FRAME, msg: "t…" }) - 1;
      assert.deepEqual(fitErrorFrame(codec, FRAME, max), { ...FRAME, msg: "" });
    });
  });
}
