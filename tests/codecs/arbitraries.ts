/**
 * fast-check generators of Values and of frames of every channel, in canonical form (what a decoder returns):
 * integers within ±(2^53-1) as numbers, bigints only beyond, no -0, no NaN or infinities, well-formed text.
 */
import fc from "fast-check";
import type { DownChannel, UpChannel, Value } from "../../codecs/index.ts";

const noNegZero = (x: number): number => (x === 0 ? 0 : x);

export const finiteDouble = fc.double({ noNaN: true, noDefaultInfinity: true }).map(noNegZero);
const bigBeyondSafe = fc
  .bigInt({ min: -(1n << 90n), max: 1n << 90n })
  .filter((n) => n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER));
export const text = fc.oneof(fc.string(), fc.string({ unit: "grapheme" }));
const key = text.filter((k) => k !== "__proto__");

const leaf: fc.Arbitrary<Value> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.maxSafeInteger(),
  fc.integer({ min: -100, max: 100 }),
  finiteDouble,
  bigBeyondSafe,
  text,
  fc.uint8Array({ maxLength: 20 }),
);

/** Values nested at most 4 levels, so frames stay within the default depth limit of 16. */
export const value: fc.Arbitrary<Value> = fc.letrec<{ value: Value }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", maxDepth: 4 },
    leaf,
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(key, tie("value"), { maxKeys: 4, noNullPrototype: true }),
  ),
})).value;

export const valueMap = fc.dictionary(key, value, { maxKeys: 6, noNullPrototype: true });
const id = fc.string({ minLength: 1, maxLength: 40 });
/** An alias table: distinct metric names of 1 to 128 characters. */
export const metricNames = fc.uniqueArray(
  text.filter((n) => n.length >= 1 && n.length <= 128 && n !== "__proto__"),
  { minLength: 1, maxLength: 12 },
);
/** Positional readings: mostly numbers (float32 as a sensor driver makes them), some nulls and other Values. */
export const positionalReadings = fc.array(
  fc.oneof(
    { weight: 3, arbitrary: fc.float({ noNaN: true, noDefaultInfinity: true }).map(noNegZero) },
    { weight: 2, arbitrary: fc.integer({ min: -1000, max: 100000 }) },
    { weight: 1, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: value },
  ),
  { minLength: 1, maxLength: 12 },
);
const uint = fc.maxSafeNat();

const senmlRecord = fc.record(
  {
    bn: text,
    bt: finiteDouble,
    n: text,
    u: text,
    v: finiteDouble,
    vs: text,
    vb: fc.boolean(),
    vd: fc.uint8Array({ maxLength: 8 }),
    t: finiteDouble,
  },
  { requiredKeys: [], noNullPrototype: true },
);

export const upFrames: { [C in UpChannel]: fc.Arbitrary<Record<string, unknown>> } = {
  hello: fc.record(
    {
      fw: text,
      codec: fc.constantFrom("json", "cbor", "pb"),
      sync: fc.boolean(),
      stream: fc.boolean(),
      maxFrame: uint,
      metrics: metricNames,
    },
    { requiredKeys: ["fw"], noNullPrototype: true },
  ),
  telemetry: fc.oneof(
    fc.record({ ts: uint, r: valueMap }, { requiredKeys: ["r"], noNullPrototype: true }),
    fc.record(
      { ts: uint, r: valueMap, senml: fc.array(senmlRecord, { maxLength: 4 }) },
      { requiredKeys: ["senml"], noNullPrototype: true },
    ),
    fc.record({ ts: uint, rv: positionalReadings, r: valueMap }, { requiredKeys: ["rv"], noNullPrototype: true }),
  ),
  state: fc.record({ v: uint, s: valueMap }, { noNullPrototype: true }),
  ack: fc.record(
    { id, ok: fc.boolean(), res: value, err: text },
    { requiredKeys: ["id", "ok"], noNullPrototype: true },
  ),
  rpc: fc.record(
    { id, m: id, a: fc.array(value, { maxLength: 4 }) },
    { requiredKeys: ["id", "m"], noNullPrototype: true },
  ),
  reason: fc.record(
    { id, q: text, max: uint, stream: fc.boolean() },
    { requiredKeys: ["id", "q"], noNullPrototype: true },
  ),
};

export const downFrames: { [C in DownChannel]: fc.Arbitrary<Record<string, unknown>> } = {
  identity: fc.record({ name: text, id: text, pv: uint, t: uint }, { noNullPrototype: true }),
  state: fc.record({ v: uint, d: valueMap, full: fc.boolean() }, { requiredKeys: ["v", "d"], noNullPrototype: true }),
  cmd: fc.record({ id, n: id, a: value, exp: uint }, { requiredKeys: ["id", "n"], noNullPrototype: true }),
  rpc: fc.record(
    { id, ok: fc.boolean(), res: value, err: text },
    { requiredKeys: ["id", "ok"], noNullPrototype: true },
  ),
  reason: fc.record(
    {
      id,
      seq: uint,
      text,
      fin: fc.boolean(),
      fr: fc.constantFrom("stop", "length", "tool_calls", "error", "cancelled"),
      u: fc.record({ p: uint, c: uint, k: uint }, { requiredKeys: ["p", "c"], noNullPrototype: true }),
    },
    { requiredKeys: ["id", "seq"], noNullPrototype: true },
  ),
  error: fc.record(
    { code: text, msg: text, id: text, v: uint },
    { requiredKeys: ["code", "msg"], noNullPrototype: true },
  ),
};
