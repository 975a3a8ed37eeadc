/**
 * fast-check generators of up frames that are well formed in their codec but carry adversarial values on every
 * field of every up channel: wrong types, integers beyond every bound, NaN and the infinities, -0, very long text,
 * lone surrogates and NUL, nesting around the 16-level limit, empty, long and repeated ids, keys twice, unknown keys,
 * alias tables that conflict, acks of unknown commands, rpc to methods that are not callable, odd reasoning options.
 * Written with raw-frame-writers.ts, so nothing of the codecs under test decides what can be sent.
 */
import fc from "fast-check";
import { type CodecName, UP_CHANNELS, type UpChannel } from "../../../codecs/index.ts";
import type { RawEntry, RawValue } from "./raw-frame-writers.ts";

/** A value the test fills in when it sends the frame: the agent's reported version or a command it queued. */
export interface FrameRef {
  t: "ref";
  ref: "reportedVersion" | "commandId";
  /** Added to the reported version; the index of the command. */
  offset: number;
}
export type PlannedEntry = readonly [string, RawValue | FrameRef];

/** One frame the fuzzed device publishes: on which channel, in which codec (with the codec suffix when not its own). */
export interface PlannedFrame {
  channel: UpChannel;
  codec: CodecName;
  entries: PlannedEntry[];
}

const int = (v: bigint | number): RawValue => ({ t: "int", v: BigInt(v) });
const float = (v: number): RawValue => ({ t: "float", v });
const text = (v: string): RawValue => ({ t: "text", v });
const list = (v: RawValue[]): RawValue => ({ t: "list", v });
const map = (v: RawEntry[]): RawValue => ({ t: "map", v });

const oddTexts = [
  "",
  " ",
  "\u0000",
  "a\u0000b",
  "\ud800",
  "x\udc00y",
  "😀",
  "\u202e\u200b",
  "__proto__",
  "constructor",
  "toString",
  "a.b",
  ".",
  "null",
];
/** Text of every awkward kind, up to 20000 characters (a frame stays well under the 64 KiB payload limit). */
export const advText: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...oddTexts),
  fc.string({ maxLength: 12 }),
  fc.string({ maxLength: 8, unit: "binary" }),
  fc.constantFrom(63, 64, 65, 127, 128, 129, 256, 257, 4000, 4001, 20000).map((n) => "x".repeat(n)),
  fc.constantFrom(128, 129).map((n) => "😀".repeat(n / 2) + (n % 2 === 1 ? "y" : "")),
);

const bounds = [0n, 1n, 2n ** 31n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n, 2n ** 64n, 10n ** 40n];
/** Integers at and past every bound, both signs. */
export const advInt: fc.Arbitrary<RawValue> = fc.oneof(
  fc.constantFrom(...bounds, ...bounds.map((b) => -b), -1n).map(int),
  fc.integer({ min: -1000, max: 1000 }).map(int),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(int),
);
/** Floats: the non-finite ones, -0, extremes and fractions. */
export const advFloat: fc.Arbitrary<RawValue> = fc.oneof(
  fc.constantFrom(Number.NaN, Infinity, -Infinity, -0, 0.5, 1.5, 1e308, 5e-324, 2 ** 53, -(2 ** 60)).map(float),
  fc.double().map(float),
);
const advScalar: fc.Arbitrary<RawValue> = fc.oneof(
  fc.constant<RawValue>({ t: "null" }),
  fc.boolean().map((v): RawValue => ({ t: "bool", v })),
  advInt,
  advFloat,
  advText.map(text),
  fc.uint8Array({ maxLength: 16 }).map((v): RawValue => ({ t: "bytes", v })),
);

/** Maps and lists nested `levels` deep around one scalar: the frame adds levels above it. */
function nestedBy(levels: number, inner: RawValue, asList: boolean): RawValue {
  let value = inner;
  for (let i = 0; i < levels; i++) value = asList ? list([value]) : map([["n", value]]);
  return value;
}
const deepValue = fc
  .tuple(fc.integer({ min: 12, max: 17 }), advScalar, fc.boolean())
  .map(([levels, inner, asList]) => nestedBy(levels, inner, asList));

const key = fc.oneof(fc.constantFrom(...oddTexts, "a", "a.b", "env", "env.t"), fc.string({ maxLength: 6 }), advText);
/** Any Value, with duplicate and awkward keys, a few levels deep or nested around the limit. */
export const advValue: fc.Arbitrary<RawValue> = fc.letrec<{ value: RawValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", maxDepth: 3 },
    { weight: 4, arbitrary: advScalar },
    { weight: 1, arbitrary: deepValue },
    { weight: 1, arbitrary: fc.array(tie("value"), { maxLength: 4 }).map(list) },
    {
      weight: 2,
      arbitrary: fc.array(fc.tuple(key, tie("value")), { maxLength: 5 }).map((entries) => map(entries as RawEntry[])),
    },
  ),
})).value;
/** A map of readings or a patch: mostly a map, with keys that collide once flattened (`a.b` and `a: {b}`). */
const advMap: fc.Arbitrary<RawValue> = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.tuple(key, advValue), { maxLength: 6 }).map((e) => map(e as RawEntry[])) },
  {
    weight: 1,
    arbitrary: fc.constant(
      map([
        ["a.b", int(1)],
        ["a", map([["b", int(2)]])],
      ]),
    ),
  },
  { weight: 1, arbitrary: advValue },
);

/** An id: empty, 1 to 256 characters and past them, awkward text; a few short ones repeat across frames. */
const advId: fc.Arbitrary<RawValue> = fc.oneof(
  fc.constantFrom("a", "b", "r-1").map(text),
  fc.constantFrom(0, 1, 64, 65, 256, 257).map((n) => text("i".repeat(n))),
  advText.map(text),
);
/** uint fields (versions, times, sizes): a few safe ones, each bound, far past and future times. */
const advUint: fc.Arbitrary<RawValue> = fc.oneof(
  fc.constantFrom(0, 1, 2, 16, 64, 200, 512, 4096, 65536, Date.UTC(2026, 0, 1), Date.UTC(2100, 0, 1)).map(int),
  advInt,
  advFloat,
);

/** A field: mostly of its type with awkward values, sometimes any value at all (wrong types). */
const field = (typed: fc.Arbitrary<RawValue | FrameRef>): fc.Arbitrary<RawValue | FrameRef> =>
  fc.oneof({ weight: 4, arbitrary: typed }, { weight: 1, arbitrary: advValue });
const bool = fc.boolean().map((v): RawValue => ({ t: "bool", v }));

/** Alias tables: distinct names, duplicates, `__proto__`, empty names, too long names, too many names. */
const metrics: fc.Arbitrary<RawValue> = fc.oneof(
  fc
    .uniqueArray(fc.constantFrom("temp", "hum", "pres", "co2", "env", "a.b"), { minLength: 1 })
    .map((n) => list(n.map(text))),
  fc.array(advText, { minLength: 0, maxLength: 5 }).map((n) => list(n.map(text))),
  fc.constantFrom(256, 257).map((n) => list(Array.from({ length: n }, (_, i) => text(`m${i}`)))),
  fc.constant(list([text("temp"), text("temp")])),
);

const senmlRecord: fc.Arbitrary<RawValue> = fc
  .record(
    {
      bn: field(advText.map(text)),
      bt: field(advFloat),
      n: field(advText.map(text)),
      u: field(advText.map(text)),
      v: field(fc.oneof(advFloat, advInt)),
      vs: field(advText.map(text)),
      vb: field(bool),
      vd: field(fc.uint8Array({ maxLength: 8 }).map((v): RawValue => ({ t: "bytes", v }))),
      t: field(fc.oneof(advFloat, advInt)),
    },
    { requiredKeys: [] },
  )
  .map((r) => map(Object.entries(r) as RawEntry[]));

const rpcMethods = ["ping", "getShadow", "getStatus", "getCommand", "setDesired", "sendCommand", "queryTelemetry"];
const notCallable = ["constructor", "__proto__", "toString", "onMessage", "destroy", "sql", "hasOwnProperty", ""];

/** The fields of each up channel, each generated as above. */
const FIELDS: { [C in UpChannel]: Record<string, fc.Arbitrary<RawValue | FrameRef>> } = {
  hello: {
    fw: field(advText.map(text)),
    codec: field(fc.constantFrom("xml", "", "CBOR").map(text)),
    sync: field(bool),
    stream: field(bool),
    maxFrame: field(fc.oneof(fc.integer({ min: 1, max: 96 }).map(int), advUint)),
    metrics: field(metrics),
  },
  telemetry: {
    ts: field(advUint),
    r: field(advMap),
    rv: field(fc.oneof(fc.array(advValue, { maxLength: 8 }).map(list), fc.constant(list(Array(300).fill(int(1)))))),
    senml: field(fc.array(senmlRecord, { maxLength: 4 }).map(list)),
  },
  state: {
    v: field(
      fc.oneof(
        {
          weight: 3,
          arbitrary: fc
            .integer({ min: -1, max: 1 })
            .map((offset): FrameRef => ({ t: "ref", ref: "reportedVersion", offset })),
        },
        { weight: 1, arbitrary: advUint },
      ),
    ),
    s: field(advMap),
  },
  ack: {
    id: field(
      fc.oneof(
        fc.integer({ min: 0, max: 2 }).map((offset): FrameRef => ({ t: "ref", ref: "commandId", offset })),
        advId,
      ),
    ),
    ok: field(bool),
    res: advValue,
    err: field(advText.map(text)),
  },
  rpc: {
    id: field(advId),
    m: field(fc.oneof(fc.constantFrom(...rpcMethods, ...notCallable).map(text), advText.map(text))),
    a: field(fc.array(advValue, { maxLength: 3 }).map(list)),
  },
  reason: {
    id: field(advId),
    q: field(fc.oneof(fc.constantFrom("how warm is it?", "   ", "\n\t").map(text), advText.map(text))),
    max: field(advUint),
    stream: field(bool),
  },
};

/** The keys a frame of each channel must have, present in most generated frames so they reach the agent. */
const REQUIRED: { [C in UpChannel]: readonly string[] } = {
  hello: ["fw"],
  telemetry: [],
  state: ["v", "s"],
  ack: ["id", "ok"],
  rpc: ["id", "m"],
  reason: ["id", "q"],
};

function frameOf(channel: UpChannel): fc.Arbitrary<PlannedEntry[]> {
  const fields = FIELDS[channel];
  const required = REQUIRED[channel];
  // A required key is missing from one frame in ten, an optional one from half of them.
  const present = Object.keys(fields).map((k) =>
    fc.tuple(fc.integer({ min: 0, max: 9 }), fields[k]).map(([roll, value]) => {
      const keep = required.includes(k) ? roll > 0 : roll >= 5;
      return keep ? ([[k, value]] as PlannedEntry[]) : [];
    }),
  );
  const extras = fc.array(fc.tuple(fc.constantFrom("zz", "x-new", "fw2", ""), advValue), { maxLength: 2 });
  return fc.tuple(fc.tuple(...present), extras, fc.nat()).map(([parts, extra, dupAt]) => {
    const entries: PlannedEntry[] = parts.flat();
    for (const e of extra) entries.push(e as PlannedEntry);
    // One frame in eight repeats one of its keys (CBOR and JSON refuse it; protobuf keeps the last).
    if (entries.length > 0 && dupAt % 8 === 0) entries.push(entries[dupAt % entries.length]);
    return entries;
  });
}

type FieldType = "text" | "uint" | "bool" | "map" | "list" | "names" | "any";
/** The type of each field (protocol.md, Channels), for {@link tame}. */
const TYPES: { [C in UpChannel]: Record<string, FieldType> } = {
  hello: { fw: "text", codec: "any", sync: "bool", stream: "bool", maxFrame: "uint", metrics: "names" },
  telemetry: { ts: "uint", r: "map", rv: "list", senml: "list" },
  state: { v: "uint", s: "map" },
  ack: { id: "text", ok: "bool", res: "any", err: "text" },
  rpc: { id: "text", m: "text", a: "list" },
  reason: { id: "text", q: "text", max: "uint", stream: "bool" },
};
const FALLBACK: Record<Exclude<FieldType, "any">, RawValue> = {
  text: text("x"),
  uint: int(1),
  bool: { t: "bool", v: true },
  map: map([]),
  list: list([int(1)]),
  names: list([text("temp")]),
};
/** Levels of maps and lists a tamed field keeps: with the frame and the fields above it, within the limit of 16. */
const TAME_DEPTH = 12;

/** `s` with each lone surrogate replaced by U+FFFD (String.prototype.toWellFormed, which ES2022 typings lack). */
const wellFormed = (s: string) =>
  s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");

/** `value` with what no codec takes replaced: finite numbers, well-formed text, unique keys, bounded nesting. */
function tameValue(value: RawValue, depth: number): RawValue {
  switch (value.t) {
    case "float":
      return Number.isFinite(value.v) ? value : float(0.5);
    case "text":
      return text(wellFormed(value.v));
    case "list":
      return depth >= TAME_DEPTH ? { t: "null" } : list(value.v.map((item) => tameValue(item, depth + 1)));
    case "map": {
      if (depth >= TAME_DEPTH) return { t: "null" };
      const seen = new Set<string>();
      const entries: RawEntry[] = [];
      for (const [k, item] of value.v) {
        const cleanKey = wellFormed(k);
        if (seen.has(cleanKey) || cleanKey === "__proto__") continue;
        seen.add(cleanKey);
        entries.push([cleanKey, tameValue(item, depth + 1)]);
      }
      return map(entries);
    }
    default:
      return value;
  }
}

function hasType(value: RawValue, type: Exclude<FieldType, "any">): boolean {
  if (type === "uint") return value.t === "int" && value.v >= 0n && value.v <= BigInt(Number.MAX_SAFE_INTEGER);
  if (type === "names") return value.t === "list" && value.v.length > 0 && value.v.length <= 256;
  return value.t === { text: "text", bool: "bool", map: "map", list: "list" }[type];
}

/**
 * A frame the codecs take, made from a hostile one: each field of its type (else a plain value of it), every value
 * tamed, no key twice, every required key there. Its values stay odd (huge, empty, long, deep, colliding, unknown
 * methods and commands), so it reaches the agent with them.
 */
function tame(channel: UpChannel, entries: readonly PlannedEntry[]): PlannedEntry[] {
  const out = new Map<string, RawValue | FrameRef>();
  for (const [k, value] of entries) {
    const type: FieldType = TYPES[channel][k] ?? "any";
    if (value.t === "ref") out.set(k, value);
    else if (type === "any" || hasType(value, type)) out.set(k, tameValue(value, 1));
    else out.set(k, FALLBACK[type]);
  }
  for (const k of REQUIRED[channel]) if (!out.has(k)) out.set(k, FALLBACK[TYPES[channel][k] as "text"]);
  if (channel === "telemetry" && !out.has("r") && !out.has("rv") && !out.has("senml")) out.set("r", map([]));
  return [...out];
}

/** A frame of any up channel, mostly in `own` (the device's codec), sometimes in another one named by the suffix. */
export function plannedFrame(own: CodecName): fc.Arbitrary<PlannedFrame> {
  const codec = fc.oneof(
    { weight: 5, arbitrary: fc.constant(own) },
    { weight: 1, arbitrary: fc.constantFrom<CodecName>("json", "cbor", "pb") },
  );
  return fc
    .constantFrom(...UP_CHANNELS)
    .chain((channel) =>
      fc.record({
        channel: fc.constant(channel),
        codec,
        // Half the frames are tamed, so that most reach the agent rather than stop at the codec.
        entries: fc
          .tuple(frameOf(channel), fc.boolean())
          .map(([entries, hostile]) => (hostile ? entries : tame(channel, entries))),
      }),
    )
    .map((frame) => Object.defineProperty(frame, fc.toStringMethod, { value: () => describeFrame(frame) }));
}

/** A short description for counterexamples: a 300-character head of the entries (long texts repeat one letter). */
function describeFrame(frame: PlannedFrame): string {
  const entries = fc.stringify(frame.entries);
  return `${frame.channel}/${frame.codec} ${entries.length > 300 ? `${entries.slice(0, 300)}...` : entries}`;
}
