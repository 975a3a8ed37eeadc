import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { SseParser } from "../../engine-client/index.ts";

function parseAll(chunks: string[]) {
  const parser = new SseParser();
  const events = chunks.flatMap((chunk) => parser.push(chunk));
  parser.end();
  return events;
}

describe("SSE parser", () => {
  test("data events are dispatched on a blank line and [DONE] is an ordinary data value", () => {
    const events = parseAll(['data: {"a":1}\n\ndata: [DONE]\n\n']);
    assert.deepEqual(
      events.map((e) => e.data),
      ['{"a":1}', "[DONE]"],
    );
    assert.equal(events[0].event, "message");
  });

  test("CRLF, CR and LF line endings all delimit lines", () => {
    const events = parseAll(["data: one\r\n\r\ndata: two\r\rdata: three\n\n"]);
    assert.deepEqual(
      events.map((e) => e.data),
      ["one", "two", "three"],
    );
  });

  test("an event split across chunks, even between CR and LF, is reassembled once", () => {
    const events = parseAll(["da", 'ta: {"x":', '"y"}\r', "", "\n\r", "\n"]);
    assert.deepEqual(
      events.map((e) => e.data),
      ['{"x":"y"}'],
    );
  });

  test("comment lines are keep-alives and produce no event", () => {
    const events = parseAll([": keep-alive\n\n: ping\ndata: x\n\n"]);
    assert.deepEqual(
      events.map((e) => e.data),
      ["x"],
    );
  });

  test("several data lines of one event are joined with a newline, and a named event keeps its name", () => {
    const events = parseAll(["event: error\ndata: a\ndata: b\nid: 7\n\n"]);
    assert.deepEqual(events, [{ event: "error", data: "a\nb", id: "7" }]);
  });

  test("a byte order mark at the very start is ignored, and a field without a space after the colon is read", () => {
    const events = parseAll(["\ufeffdata:x\n\n"]);
    assert.deepEqual(
      events.map((e) => e.data),
      ["x"],
    );
  });

  test("an event without its terminating blank line is not dispatched", () => {
    const events = parseAll(['data: {"half":']);
    assert.deepEqual(events, []);
  });

  test("any split of a stream into chunks yields the same events as the whole stream", () => {
    const stream =
      'data: {"choices":[{"delta":{"content":"h\u00e9llo"}}]}\r\n\r\n: keep-alive\n\ndata: a\ndata: b\r\rdata: [DONE]\n\n';
    const whole = parseAll([stream]);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: stream.length }), { maxLength: 12 }), (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const chunks: string[] = [];
        let last = 0;
        for (const p of points) {
          chunks.push(stream.slice(last, p));
          last = p;
        }
        chunks.push(stream.slice(last));
        assert.deepEqual(parseAll(chunks), whole);
      }),
      { seed: 42, numRuns: 300 },
    );
  });
});
