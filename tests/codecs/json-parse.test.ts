/**
 * The JSON codec's own parser (codecs/json/json-parse.ts) against `JSON.parse`: the same values and the same
 * refusals on everything `JSON.parse` handles exactly, and the three documented differences: integer tokens beyond
 * 2^53 keep their exact value, duplicate keys are refused, escapes of lone surrogates are refused. Plus what that
 * means at the codec boundary.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { jsonCodec } from "../../codecs/index.ts";
import { MAX_INTEGER_DIGITS, parseJson } from "../../codecs/json/json-parse.ts";
import { DecodeFault, describeJsonSyntax } from "../../codecs/schema/fault.ts";

const text = (s: string) => new TextEncoder().encode(s);
const asText = (b: Uint8Array) => new TextDecoder().decode(b);

/** What JSON.parse gives, with bigints of ours turned into the float JSON.parse would have rounded them to. */
function roundBigInts(v: unknown): unknown {
  if (typeof v === "bigint") return Number(v);
  if (Array.isArray(v)) return v.map(roundBigInts);
  if (typeof v === "object" && v !== null) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, roundBigInts(x)]));
  }
  return v;
}

function outcome(s: string): { ok: true; value: unknown } | { ok: false; code: string } {
  try {
    return { ok: true, value: parseJson(s, 1000) };
  } catch (err) {
    if (err instanceof DecodeFault) return { ok: false, code: err.code };
    throw err;
  }
}

describe("the JSON parser", () => {
  test("reads generated JSON texts as JSON.parse does, up to integers beyond 2^53", () => {
    const doc = fc.oneof(
      fc.json({ maxDepth: 4 }),
      fc.json({ maxDepth: 2 }).map((j) => JSON.stringify(JSON.parse(j), null, 2)),
    );
    fc.assert(
      fc.property(doc, (s) => {
        fc.pre(!s.includes("__proto__"));
        const ours = outcome(s);
        assert.ok(ours.ok, s);
        if (ours.ok) assert.deepStrictEqual(roundBigInts(ours.value), JSON.parse(s));
      }),
      { seed: 31, numRuns: 500 },
    );
  });

  test("refuses exactly the damaged texts JSON.parse refuses, with BRIDGE_ERR_FRAME_DECODE", () => {
    const damaged = fc.oneof(
      fc.string({ maxLength: 24 }),
      fc.tuple(fc.json({ maxDepth: 3 }), fc.nat()).map(([s, cut]) => s.slice(0, cut % (s.length + 1))),
      fc
        .tuple(fc.json({ maxDepth: 3 }), fc.nat(), fc.constantFrom(...'{}[]:,"\\ 0-.eE+tfn\u0001'))
        .map(([s, at, c]) => {
          const i = at % (s.length + 1);
          return s.slice(0, i) + c + s.slice(i + 1);
        }),
    );
    fc.assert(
      fc.property(damaged, (s) => {
        fc.pre(!s.includes("__proto__"));
        let native: unknown;
        let nativeOk = true;
        try {
          native = JSON.parse(s);
        } catch {
          nativeOk = false;
        }
        const ours = outcome(s);
        if (!ours.ok && ours.code === "BRIDGE_ERR_FRAME_INVALID") return; // a duplicate key: ours refuses on purpose
        assert.equal(ours.ok, nativeOk, s);
        if (ours.ok) assert.deepStrictEqual(roundBigInts(ours.value), native);
        else assert.equal(ours.code, "BRIDGE_ERR_FRAME_DECODE");
      }),
      { seed: 32, numRuns: 3000 },
    );
  });

  const syntax: [string, string][] = [
    ["a trailing comma", '{"a":1,}'],
    ["a leading zero", '{"a":01}'],
    ["a bare minus", '{"a":-}'],
    ["a control character in a string", '{"a":"x\u0001"}'],
    ["a bad escape", '{"a":"\\x"}'],
    ["a short \\u escape", '{"a":"\\u12"}'],
    ["NaN", '{"a":NaN}'],
    ["single quotes", "{'a':1}"],
    ["a missing colon", '{"a" 1}'],
    ["text after the document", '{"a":1} x'],
  ];
  for (const [name, s] of syntax) {
    test(`refuses ${name} as JSON.parse does`, () => {
      assert.throws(() => JSON.parse(s));
      assert.deepStrictEqual(outcome(s), { ok: false, code: "BRIDGE_ERR_FRAME_DECODE" });
    });
  }

  test("a syntax error carries the parser's own problem and position, which its message is built from", () => {
    const cases: Array<[string, { problem: string; position: number }]> = [
      ['{"a":}', { problem: 'unexpected "}"', position: 5 }],
      ['{"a":1', { problem: "unexpected end", position: 6 }],
      ['{"a":1} x', { problem: "trailing characters", position: 8 }],
    ];
    for (const [text, detail] of cases) {
      assert.throws(
        () => parseJson(text, 16),
        (err: unknown) => {
          assert.ok(err instanceof DecodeFault, text);
          assert.equal(err.code, "BRIDGE_ERR_FRAME_DECODE", text);
          assert.deepStrictEqual(err.syntax, detail, text);
          assert.equal(err.message, `payload is not JSON: ${describeJsonSyntax(detail)}`, text);
          assert.equal(describeJsonSyntax(detail), `${detail.problem} at position ${detail.position}`);
          return true;
        },
      );
    }
  });

  test("a fault that is no syntax error carries no syntax detail", () => {
    assert.throws(
      () => parseJson('{"a":1,"a":2}', 16),
      (err: unknown) =>
        err instanceof DecodeFault && err.code === "BRIDGE_ERR_FRAME_INVALID" && err.syntax === undefined,
    );
  });
});

describe("integers beyond 2^53 in JSON text", () => {
  const decodeR = (json: string) => jsonCodec.decodeUp("telemetry", text(`{"r":${json}}`));

  test("decode as exact bigints, not rounded floats", () => {
    assert.deepStrictEqual(decodeR('{"a":123456789012345678901234567890}'), {
      ok: true,
      frame: { r: { a: 123456789012345678901234567890n } },
    });
    assert.deepStrictEqual(decodeR('{"a":9007199254740993,"b":-9007199254740993,"c":[18446744073709551621]}'), {
      ok: true,
      frame: { r: { a: 9007199254740993n, b: -9007199254740993n, c: [18446744073709551621n] } },
    });
  });

  test("stay numbers within ±(2^53-1), and floats stay floats whatever their size", () => {
    assert.deepStrictEqual(
      decodeR('{"a":9007199254740991,"b":-9007199254740991,"c":1e30,"d":12345678901234567890.5}'),
      {
        ok: true,
        frame: { r: { a: 9007199254740991, b: -9007199254740991, c: 1e30, d: Number("12345678901234567890.5") } },
      },
    );
  });

  test("decode as the same bigint as the $bigint form and as CBOR's integer", () => {
    const plain = decodeR('{"a":18446744073709551621}');
    const tagged = decodeR('{"a":{"$bigint":"18446744073709551621"}}');
    assert.deepStrictEqual(plain, tagged);
  });

  test("are refused with BRIDGE_ERR_FRAME_INVALID naming the field where the schema wants a safe integer or a number", () => {
    const cases: [string, string, string][] = [
      ["state", '{"v":99999999999999999999,"s":{}}', "v"],
      ["telemetry", '{"ts":17642016000000000000,"r":{"a":1}}', "ts"],
      ["telemetry", '{"senml":[{"n":"t","v":123456789012345678901234567890}]}', "senml[0].v"],
      ["reason", '{"id":"q","q":"hi","max":9007199254740993}', "max"],
    ];
    for (const [channel, json, field] of cases) {
      const result = jsonCodec.decodeUp(channel as "state", text(json));
      assert.equal(result.ok, false, json);
      if (!result.ok) {
        assert.equal(result.code, "BRIDGE_ERR_FRAME_INVALID", result.message);
        assert.equal(result.field, field, result.message);
      }
    }
  });

  test(`refuses an integer of more than ${MAX_INTEGER_DIGITS} digits with BRIDGE_ERR_FRAME_INVALID naming it`, () => {
    const result = decodeR(`{"big":${"9".repeat(MAX_INTEGER_DIGITS + 1)}}`);
    assert.equal(result.ok, false);
    if (!result.ok) {
      assert.equal(result.code, "BRIDGE_ERR_FRAME_INVALID");
      assert.equal(result.field, "r.big");
    }
    assert.ok(decodeR(`{"big":${"9".repeat(MAX_INTEGER_DIGITS)}}`).ok);
  });

  test("an integral float beyond 2^53 is written with an exponent, so it reads back as the same float", () => {
    const r = { f: 2 ** 60, g: -1e20, h: 2 ** 53, n: 2n ** 60n };
    const bytes = jsonCodec.encodeUp("telemetry", { r });
    assert.equal(
      asText(bytes),
      '{"r":{"f":1.152921504606847e+18,"g":-1e+20,"h":9.007199254740992e+15,"n":{"$bigint":"1152921504606846976"}}}',
    );
    assert.deepStrictEqual(jsonCodec.decodeUp("telemetry", bytes), { ok: true, frame: { r } });
  });
});

describe("lone surrogates in JSON text", () => {
  /** The fault parseJson throws for `s`, or undefined when it parses. */
  function fault(s: string): DecodeFault | undefined {
    try {
      parseJson(s, 16);
      return undefined;
    } catch (err) {
      if (err instanceof DecodeFault) return err;
      throw err;
    }
  }

  test("a \\u escape of a lone surrogate in a value is refused with BRIDGE_ERR_FRAME_INVALID naming its path", () => {
    const cases: [string, string][] = [
      ['{"a":"\\ud800"}', "a"],
      ['{"a":{"b":["ok","x\\udfff"]}}', "a.b[1]"],
      ['{"a":"\\ude00\\ud83d"}', "a"],
      ['{"a":"\\ud83d\\ud83d\\ude00"}', "a"],
    ];
    for (const [s, field] of cases) {
      const refused = fault(s);
      assert.equal(refused?.code, "BRIDGE_ERR_FRAME_INVALID", s);
      assert.equal(refused?.field, field, s);
      assert.match(
        String(refused?.message),
        new RegExp(`^${field.replace(/[.[\]]/g, "\\$&")}: text holds a lone surrogate`),
      );
    }
  });

  test("a lone surrogate in a key is refused naming the key, written as its escape so the message is well-formed", () => {
    const refused = fault('{"a":{"k\\udc00":1}}');
    assert.equal(refused?.code, "BRIDGE_ERR_FRAME_INVALID");
    assert.equal(refused?.field, "a.k\\udc00");
    assert.equal(refused?.message, "a.k\\udc00: a key holds a lone surrogate \\udc00, which UTF-8 cannot carry");
    assert.ok((String(refused?.message) as string & { isWellFormed(): boolean }).isWellFormed());
  });

  test("a fault names its path and its problem apart, so a caller words its own message without slicing this one", () => {
    const nested = fault('{"a":{"k\\udc00":1}}');
    assert.equal(nested?.field, "a.k\\udc00");
    assert.equal(nested?.problem, "a key holds a lone surrogate \\udc00, which UTF-8 cannot carry");
    assert.equal(nested?.message, `${nested?.field}: ${nested?.problem}`);
    // At the top there is no path: the message names the frame, the problem is the same bare text.
    const top = fault('"\\ud800"');
    assert.equal(top?.field, undefined);
    assert.equal(top?.problem, "text holds a lone surrogate \\ud800, which UTF-8 cannot carry");
    assert.equal(top?.message, `frame: ${top?.problem}`);
    const duplicate = fault('{"a":[{"b":1,"b":2}]}');
    assert.deepEqual([duplicate?.field, duplicate?.problem], ["a[0].b", "duplicate map key"]);
  });

  test("a surrogate pair, escaped or not, is one character and reads as it was written", () => {
    assert.deepStrictEqual(parseJson('{"e":"\\ud83d\\ude00","\\ud83d\\ude00":"😀"}', 16), { e: "😀", "😀": "😀" });
  });

  test("device JSON refuses them as before, with the same code and path", () => {
    const result = jsonCodec.decodeUp("telemetry", text('{"r":{"label":"x\\ud800"}}'));
    assert.equal(result.ok, false);
    if (!result.ok) {
      assert.equal(result.code, "BRIDGE_ERR_FRAME_INVALID");
      assert.equal(result.field, "r.label");
    }
    const key = jsonCodec.decodeUp("telemetry", text('{"r":{"\\ud800":1}}'));
    assert.equal(key.ok, false);
    if (!key.ok) assert.equal(key.field, "r.\\ud800");
  });
});
