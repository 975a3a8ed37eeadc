/**
 * Metric aliases (hello `metrics`, telemetry `rv`) in every codec: what is accepted, what is refused with which code
 * and field, and that positional readings keep their order and float32 values exactly.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ALL_CODECS, bridgeProtoRoot, type DecodeResult, MAX_METRIC_ALIASES, type Value } from "../../codecs/index.ts";
import { hasErrorCode } from "../../errors/index.ts";
import { rawWriters } from "./raw-writers.ts";

const Frame = bridgeProtoRoot.lookupType("agentbridge.v1.Frame");
const pbFrame = (body: Record<string, unknown>): Uint8Array => Frame.encode(body).finish();

const names = (n: number): string[] => Array.from({ length: n }, (_, i) => `m${i}`);

function assertRefused(result: DecodeResult<unknown>, field: string | undefined): void {
  assert.equal(result.ok, false, "expected BRIDGE_ERR_FRAME_INVALID, got a frame");
  if (result.ok) return;
  assert.equal(result.code, "BRIDGE_ERR_FRAME_INVALID", result.message);
  if (field !== undefined) assert.equal(result.field, field, result.message);
}

/** Bad alias tables and positional readings, as maps and (where the .proto can say it) as protobuf bodies. */
const BAD: {
  name: string;
  channel: "hello" | "telemetry";
  map: unknown;
  pb?: Record<string, unknown>;
  field?: string;
}[] = [
  {
    name: "a repeated metric name",
    channel: "hello",
    map: { fw: "1", metrics: ["temp", "hum", "temp"] },
    pb: { upHello: { fw: "1", metrics: ["temp", "hum", "temp"] } },
    field: "metrics[2]",
  },
  {
    name: "an empty metric name",
    channel: "hello",
    map: { fw: "1", metrics: ["temp", ""] },
    pb: { upHello: { fw: "1", metrics: ["temp", ""] } },
    field: "metrics[1]",
  },
  {
    name: "a metric name of 129 characters",
    channel: "hello",
    map: { fw: "1", metrics: ["x".repeat(129)] },
    pb: { upHello: { fw: "1", metrics: ["x".repeat(129)] } },
    field: "metrics[0]",
  },
  {
    name: "the metric name __proto__",
    channel: "hello",
    map: { fw: "1", metrics: ["__proto__"] },
    pb: { upHello: { fw: "1", metrics: ["__proto__"] } },
    field: "metrics[0]",
  },
  {
    name: "an alias table of 257 names",
    channel: "hello",
    map: { fw: "1", metrics: names(MAX_METRIC_ALIASES + 1) },
    pb: { upHello: { fw: "1", metrics: names(MAX_METRIC_ALIASES + 1) } },
    field: "metrics",
  },
  { name: "an empty alias table", channel: "hello", map: { fw: "1", metrics: [] }, field: "metrics" },
  {
    name: "a metric name that is a number",
    channel: "hello",
    map: { fw: "1", metrics: ["a", 7] },
    field: "metrics[1]",
  },
  { name: "an alias table that is a map", channel: "hello", map: { fw: "1", metrics: { a: 1 } }, field: "metrics" },
  { name: "empty positional readings", channel: "telemetry", map: { rv: [] }, field: "rv" },
  { name: "positional readings that are a map", channel: "telemetry", map: { rv: { a: 1 } }, field: "rv" },
  {
    name: "257 positional readings",
    channel: "telemetry",
    map: { rv: names(MAX_METRIC_ALIASES + 1).map((_, i) => i) },
    pb: { upTelemetry: { rv: names(MAX_METRIC_ALIASES + 1).map((_, i) => ({ intValue: i })) } },
    field: "rv",
  },
];

for (const codec of ALL_CODECS) {
  describe(`metric aliases in ${codec.name}`, () => {
    test("a hello with an alias table of 256 names round trips in order", () => {
      const frame = { fw: "2.0", metrics: names(MAX_METRIC_ALIASES).reverse() };
      const back = codec.decodeUp("hello", codec.encodeUp("hello", frame));
      assert.ok(back.ok, back.ok ? "" : back.message);
      assert.deepStrictEqual(back.frame, frame);
    });

    test("telemetry with only positional readings round trips with nulls, float32 values and nested values", () => {
      const rv: Value[] = [Math.fround(21.37), null, 612, -67, Math.fround(3.71), true, "ok", { x: 1 }, [1, 2]];
      const frame = { ts: 1764201600000, rv };
      const back = codec.decodeUp("telemetry", codec.encodeUp("telemetry", frame));
      assert.ok(back.ok, back.ok ? "" : back.message);
      assert.deepStrictEqual(back.frame, frame);
    });

    test("telemetry may carry positional readings beside named ones", () => {
      const frame = { r: { door: false }, rv: [1.5, 2] };
      const back = codec.decodeUp("telemetry", codec.encodeUp("telemetry", frame));
      assert.ok(back.ok, back.ok ? "" : back.message);
      assert.deepStrictEqual(back.frame, frame);
    });

    test("encoding a hello with a repeated metric name throws BRIDGE_ERR_FRAME_ENCODE", () => {
      assert.throws(
        () => codec.encodeUp("hello", { fw: "1", metrics: ["a", "a"] }),
        (err: unknown) => hasErrorCode(err, "BRIDGE_ERR_FRAME_ENCODE"),
      );
    });

    const raw = rawWriters[codec.name];
    for (const bad of BAD) {
      const bytes = raw !== undefined ? raw(bad.map) : bad.pb !== undefined ? pbFrame(bad.pb) : undefined;
      if (bytes === undefined) continue;
      test(`refuses ${bad.name} with BRIDGE_ERR_FRAME_INVALID naming ${bad.field}`, () => {
        assertRefused(codec.decodeUp(bad.channel, bytes), bad.field);
      });
    }
  });
}

describe("metric aliases in protobuf", () => {
  test("the alias table is read in order even when other hello fields sit between its names", () => {
    // fw "1" (field 1), metrics "a" (field 6), codec "pb" (field 2), metrics "b": any proto3 encoder may interleave.
    const bytes = Buffer.from("0a0d" + "0a0131" + "320161" + "12027062" + "320162", "hex");
    const pb = ALL_CODECS.find((c) => c.name === "pb");
    assert.ok(pb !== undefined);
    const back = pb.decodeUp("hello", bytes);
    assert.ok(back.ok, back.ok ? "" : back.message);
    assert.deepStrictEqual(back.frame, { fw: "1", codec: "pb", metrics: ["a", "b"] });
  });

  test("a hello without metrics decodes without the field, not with an empty table", () => {
    const pb = ALL_CODECS.find((c) => c.name === "pb");
    assert.ok(pb !== undefined);
    const back = pb.decodeUp("hello", pbFrame({ upHello: { fw: "1" } }));
    assert.ok(back.ok, back.ok ? "" : back.message);
    assert.equal(Object.hasOwn(back.frame, "metrics"), false);
  });
});

test("all codecs draw the depth limit at the same place inside positional readings", () => {
  const nest = (levels: number): Value => {
    let v: Value = 1;
    for (let i = 0; i < levels; i++) v = i % 2 === 0 ? [v] : { a: v };
    return v;
  };
  const verdicts = ALL_CODECS.map((codec) =>
    Array.from({ length: 7 }, (_, levels) => {
      const result = codec.decodeUp("telemetry", codec.encodeUp("telemetry", { rv: [nest(levels)] }), {
        maxDepth: 5,
      });
      return result.ok ? "ok" : result.code;
    }).join(","),
  );
  assert.equal(new Set(verdicts).size, 1, verdicts.join(" | "));
  assert.match(verdicts[0], /^ok,.*BRIDGE_ERR_FRAME_TOO_DEEP$/);
});
