/**
 * The one contract every codec passes (json, cbor, pb): round trips of generated frames of every channel, the
 * rejection of every kind of bad input with a stable code, and a fuzz pass over damaged bytes.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  ALL_CODECS,
  type Codec,
  DOWN_CHANNELS,
  type DecodeResult,
  type DownChannel,
  UP_CHANNELS,
  type UpChannel,
  bridgeProtoRoot,
} from "../../codecs/index.ts";
import { hasErrorCode } from "../../errors/index.ts";
import { downFrames, upFrames } from "./arbitraries.ts";
import { hex, rawWriters } from "./raw-writers.ts";

// Fixed seeds keep every run identical; a failure prints the seed and path to replay.
const RUNS = { seed: 20261126, numRuns: 150 };
const DECODE_CODES = new Set([
  "BRIDGE_ERR_FRAME_TOO_LARGE",
  "BRIDGE_ERR_FRAME_DECODE",
  "BRIDGE_ERR_FRAME_INVALID",
  "BRIDGE_ERR_FRAME_TOO_DEEP",
  "BRIDGE_ERR_UNKNOWN_CHANNEL",
]);

const up = (codec: Codec, channel: UpChannel, frame: unknown) => codec.encodeUp(channel, frame as never);
const down = (codec: Codec, channel: DownChannel, frame: unknown) => codec.encodeDown(channel, frame as never);

/**
 * Damaged inputs for the fuzz passes: random bytes on any of `channels`, and `valid` encodings cut short or with one
 * to four bits flipped.
 */
function damagedBytes<C extends string>(
  channels: readonly C[],
  valid: fc.Arbitrary<{ channel: C; bytes: Uint8Array }>,
): fc.Arbitrary<{ channel: C; bytes: Uint8Array }> {
  return fc.oneof(
    fc.record({ channel: fc.constantFrom(...channels), bytes: fc.uint8Array({ maxLength: 64 }) }),
    fc
      .tuple(valid, fc.nat())
      .map(([v, cut]) => ({ channel: v.channel, bytes: v.bytes.slice(0, cut % (v.bytes.length + 1)) })),
    fc.tuple(valid, fc.array(fc.nat(), { minLength: 1, maxLength: 4 })).map(([v, flips]) => {
      const bytes = v.bytes.slice();
      for (const f of flips) if (bytes.length > 0) bytes[f % bytes.length] ^= 1 << (f % 8);
      return { channel: v.channel, bytes };
    }),
  );
}

/** A fuzz outcome is a frame (true) or a decode error with one of the stable decode codes and a message (false). */
function assertFrameOrDecodeError<T>(result: DecodeResult<T>): result is { ok: true; frame: T } {
  if (result.ok) return true;
  assert.ok(DECODE_CODES.has(result.code), result.code);
  assert.equal(typeof result.message, "string");
  return false;
}

function assertFailure(result: DecodeResult<unknown>, code: string, field?: string): void {
  assert.equal(result.ok, false, `expected ${code}, got a frame`);
  if (result.ok) return;
  assert.equal(result.code, code, result.message);
  assert.equal(typeof result.message, "string");
  if (field !== undefined) assert.equal(result.field, field, result.message);
  assert.equal(Object.hasOwn(result, "frame"), false);
}

/** Builds protobuf Frame bytes from a message object, for the cases JSON and CBOR cover with raw maps. */
function pbFrame(body: Record<string, unknown>): Uint8Array {
  return bridgeProtoRoot.lookupType("agentbridge.v1.Frame").encode(body).finish();
}

/** Digits of the largest integer Value in every codec (JSON's bound on integer tokens and `$bigint` text). */
const MAX_DIGITS = 4001;

/** Big-endian magnitude bytes of a non-negative bigint (written here, independent of the codecs). */
function magnitudeBytes(n: bigint): Uint8Array {
  const hexText = n.toString(16);
  return hex(hexText.length % 2 === 0 ? hexText : `0${hexText}`);
}

/**
 * `{r: {a: n}}` written by hand in each codec's plain form for an integer beyond 64 bits (a JSON integer token, a
 * CBOR tag 2/3, a protobuf bignum), since the encoders refuse integers beyond the bound.
 */
function frameWithInteger(codecName: string, n: bigint): Uint8Array {
  const magnitude = magnitudeBytes(n >= 0n ? n : -1n - n);
  if (codecName === "json") return new TextEncoder().encode(`{"r":{"a":${n}}}`);
  if (codecName === "pb") {
    const value = n >= 0n ? { posBignum: magnitude } : { negBignum: magnitude };
    return pbFrame({ upTelemetry: { r: { entries: [{ key: "a", value }] } } });
  }
  const length = Buffer.alloc(4);
  length.writeUInt32BE(magnitude.length);
  const head = hex(`a1 61 72 a1 61 61 ${n >= 0n ? "c2" : "c3"} 5a ${length.toString("hex")}`);
  return new Uint8Array(Buffer.concat([head, magnitude]));
}

/** A map nested `levels` deep inside `r`: {r: {a: {a: ... 1}}}. */
function nested(levels: number): Record<string, unknown> {
  let inner: unknown = 1;
  for (let i = 0; i < levels; i++) inner = { a: inner };
  return { r: inner };
}

/** Invalid frames as maps (JSON, CBOR) with the equivalent protobuf Frame where the .proto can express one. */
const BAD_FRAMES: {
  name: string;
  channel: UpChannel;
  map: unknown;
  pb?: Record<string, unknown>;
  code: string;
  field?: string;
}[] = [
  {
    name: "a missing required field",
    channel: "ack",
    map: { ok: true },
    pb: { upAck: { ok: true } },
    code: "BRIDGE_ERR_FRAME_INVALID",
    field: "id",
  },
  { name: "a text version", channel: "state", map: { v: "1", s: {} }, code: "BRIDGE_ERR_FRAME_INVALID", field: "v" },
  { name: "a negative version", channel: "state", map: { v: -1, s: {} }, code: "BRIDGE_ERR_FRAME_INVALID", field: "v" },
  {
    name: "a fractional version",
    channel: "state",
    map: { v: 1.5, s: {} },
    code: "BRIDGE_ERR_FRAME_INVALID",
    field: "v",
  },
  {
    name: "a missing state map",
    channel: "state",
    map: { v: 1 },
    pb: { upState: { v: 1 } },
    code: "BRIDGE_ERR_FRAME_INVALID",
    field: "s",
  },
  {
    name: "an unknown codec name",
    channel: "hello",
    map: { fw: "1", codec: "xml" },
    pb: { upHello: { fw: "1", codec: "xml" } },
    code: "BRIDGE_ERR_FRAME_INVALID",
    field: "codec",
  },
  {
    name: "telemetry without readings",
    channel: "telemetry",
    map: { ts: 5 },
    pb: { upTelemetry: { ts: 5 } },
    code: "BRIDGE_ERR_FRAME_INVALID",
  },
  {
    name: "readings that are not a map",
    channel: "telemetry",
    map: { r: [1, 2] },
    code: "BRIDGE_ERR_FRAME_INVALID",
    field: "r",
  },
  {
    name: "a SenML value of the wrong type",
    channel: "telemetry",
    map: { senml: [{ n: "t", v: "hot" }] },
    code: "BRIDGE_ERR_FRAME_INVALID",
    field: "senml[0].v",
  },
  {
    name: "an empty request id",
    channel: "rpc",
    map: { id: "", m: "go" },
    pb: { upRpc: { m: "go" } },
    code: "BRIDGE_ERR_FRAME_INVALID",
    field: "id",
  },
  {
    name: "rpc arguments that are not an array",
    channel: "rpc",
    map: { id: "1", m: "go", a: { x: 1 } },
    code: "BRIDGE_ERR_FRAME_INVALID",
    field: "a",
  },
  { name: "a frame that is not a map", channel: "hello", map: ["fw", "1"], code: "BRIDGE_ERR_FRAME_INVALID" },
  {
    name: "a __proto__ map key",
    channel: "telemetry",
    map: JSON.parse('{"r":{"__proto__":{"x":1}}}'),
    pb: { upTelemetry: { r: { entries: [{ key: "__proto__", value: { intValue: 1 } }] } } },
    code: "BRIDGE_ERR_FRAME_INVALID",
    field: "r.__proto__",
  },
  { name: "nesting deeper than the limit", channel: "telemetry", map: nested(20), code: "BRIDGE_ERR_FRAME_TOO_DEEP" },
];

/** Malformed bytes per codec: invalid UTF-8, truncation, trailing bytes, non-finite numbers. */
const BAD_BYTES: Record<string, { name: string; bytes: Uint8Array; code: string }[]> = {
  json: [
    { name: "invalid UTF-8", bytes: hex("7b22667722 3a 22 ff fe 22 7d"), code: "BRIDGE_ERR_FRAME_DECODE" },
    { name: "a truncated document", bytes: new TextEncoder().encode('{"fw":"1'), code: "BRIDGE_ERR_FRAME_DECODE" },
    { name: "trailing bytes", bytes: new TextEncoder().encode('{"fw":"1"}{}'), code: "BRIDGE_ERR_FRAME_DECODE" },
    {
      name: "an infinite number",
      bytes: new TextEncoder().encode('{"fw":"1","maxFrame":1e999}'),
      code: "BRIDGE_ERR_FRAME_INVALID",
    },
    {
      name: "bad base64 in $bytes",
      bytes: new TextEncoder().encode('{"r":{"b":{"$bytes":"!!"}}}'),
      code: "BRIDGE_ERR_FRAME_INVALID",
    },
    { name: "an empty payload", bytes: new Uint8Array(0), code: "BRIDGE_ERR_FRAME_DECODE" },
    // RFC 8259 section 8.1: senders must not add one; a parser may refuse it, as JSON.parse does.
    {
      name: "a byte order mark before the object",
      bytes: hex("efbbbf 7b22667722 3a 223122 7d"),
      code: "BRIDGE_ERR_FRAME_DECODE",
    },
  ],
  cbor: [
    { name: "invalid UTF-8", bytes: hex("a1 62 6677 62 fffe"), code: "BRIDGE_ERR_FRAME_DECODE" },
    { name: "a truncated item", bytes: hex("a1 62 6677 63 31"), code: "BRIDGE_ERR_FRAME_DECODE" },
    { name: "trailing bytes", bytes: hex("a1 62 6677 61 31 00"), code: "BRIDGE_ERR_FRAME_DECODE" },
    { name: "a NaN reading", bytes: hex("a1 61 72 a1 61 74 f9 7e00"), code: "BRIDGE_ERR_FRAME_INVALID" },
    { name: "an unaccepted tag", bytes: hex("a1 61 72 a1 61 74 c1 1a 5f000000"), code: "BRIDGE_ERR_FRAME_INVALID" },
    { name: "a duplicate key", bytes: hex("a2 62 6677 61 31 62 6677 61 32"), code: "BRIDGE_ERR_FRAME_INVALID" },
    { name: "an integer map key", bytes: hex("a1 01 61 31"), code: "BRIDGE_ERR_FRAME_INVALID" },
    { name: "a reserved head", bytes: hex("a1 62 6677 7c"), code: "BRIDGE_ERR_FRAME_DECODE" },
    { name: "a forged huge length", bytes: hex("a1 62 6677 7a ffffffff 31"), code: "BRIDGE_ERR_FRAME_DECODE" },
    { name: "a stray break", bytes: hex("ff"), code: "BRIDGE_ERR_FRAME_DECODE" },
    { name: "an empty payload", bytes: new Uint8Array(0), code: "BRIDGE_ERR_FRAME_DECODE" },
  ],
  pb: [
    { name: "invalid UTF-8", bytes: hex("0a 04 0a 02 fffe"), code: "BRIDGE_ERR_FRAME_DECODE" },
    { name: "a truncated message", bytes: hex("0a 05 0a 03 31"), code: "BRIDGE_ERR_FRAME_DECODE" },
    { name: "an invalid wire type", bytes: hex("0a 03 0a 01 31 0f"), code: "BRIDGE_ERR_FRAME_DECODE" },
    { name: "field number 0", bytes: hex("0a 03 0a 01 31 00 00"), code: "BRIDGE_ERR_FRAME_DECODE" },
    {
      name: "an over-long varint",
      bytes: hex("0a 0d 28 ff ff ff ff ff ff ff ff ff ff 01 00"),
      code: "BRIDGE_ERR_FRAME_DECODE",
    },
    { name: "a known field with the wrong wire type", bytes: hex("0a 02 08 01"), code: "BRIDGE_ERR_FRAME_DECODE" },
    { name: "a frame of another channel", bytes: hex("22 05 0a 01 31 10 01"), code: "BRIDGE_ERR_FRAME_INVALID" },
    { name: "an empty payload", bytes: new Uint8Array(0), code: "BRIDGE_ERR_FRAME_INVALID" },
  ],
};

for (const codec of ALL_CODECS) {
  describe(`the ${codec.name} codec`, () => {
    for (const channel of UP_CHANNELS) {
      test(`round-trips generated up/${channel} frames unchanged`, () => {
        fc.assert(
          fc.property(upFrames[channel], (frame) => {
            const result = codec.decodeUp(channel, up(codec, channel, frame));
            assert.ok(result.ok, result.ok ? "" : result.message);
            assert.deepStrictEqual(result.frame, frame);
          }),
          RUNS,
        );
      });
    }
    for (const channel of DOWN_CHANNELS) {
      test(`round-trips generated down/${channel} frames unchanged`, () => {
        fc.assert(
          fc.property(downFrames[channel], (frame) => {
            const result = codec.decodeDown(channel, down(codec, channel, frame));
            assert.ok(result.ok, result.ok ? "" : result.message);
            assert.deepStrictEqual(result.frame, frame);
          }),
          RUNS,
        );
      });
    }

    test("keeps integers beyond 2^31, safe integers up to 2^53 and bigints beyond exactly", () => {
      const r = {
        a: 2 ** 31,
        b: 2 ** 32 + 7,
        c: Number.MAX_SAFE_INTEGER,
        d: -Number.MAX_SAFE_INTEGER,
        e: 2n ** 53n,
        f: -(2n ** 64n) - 1n,
        g: 2n ** 100n,
      };
      const result = codec.decodeUp("telemetry", up(codec, "telemetry", { r }));
      assert.ok(result.ok);
      assert.deepStrictEqual(result.frame, { r });
    });

    test(`carries integers of up to ${MAX_DIGITS} decimal digits and refuses longer ones both ways, as JSON does`, () => {
      const largest = 10n ** BigInt(MAX_DIGITS) - 1n;
      for (const n of [largest, -largest]) {
        const result = codec.decodeUp("telemetry", frameWithInteger(codec.name, n));
        assert.ok(result.ok, result.ok ? "" : result.message);
        assert.deepStrictEqual(result.frame, { r: { a: n } });
        assert.deepStrictEqual(codec.decodeUp("telemetry", up(codec, "telemetry", { r: { a: n } })), result);
      }
      // One digit more, and a bignum that fills most of a 64 KiB frame: a value no other codec could carry back.
      for (const n of [largest + 1n, -largest - 1n, 2n ** (8n * 60_000n) - 1n]) {
        // A frame limit of 1 MiB: the JSON text of the last one is larger than 64 KiB.
        const bytes = frameWithInteger(codec.name, n);
        assertFailure(
          codec.decodeUp("telemetry", bytes, { maxFrameBytes: 1 << 20 }),
          "BRIDGE_ERR_FRAME_INVALID",
          "r.a",
        );
        assert.throws(
          () => up(codec, "telemetry", { r: { a: n } }),
          (err: unknown) => hasErrorCode(err, "BRIDGE_ERR_FRAME_ENCODE"),
        );
      }
    });

    test("decodes byte strings of a Buffer payload (an MQTT packet) as plain copies that do not pin it", () => {
      const res = { blob: new Uint8Array([1, 2, 3]), list: [new Uint8Array([4])] };
      const packet = Buffer.from(up(codec, "ack", { id: "a", ok: true, res }));
      const result = codec.decodeUp("ack", packet);
      packet.fill(0);
      assert.ok(result.ok);
      // deepStrictEqual compares prototypes: a Buffer view of the packet is not a Uint8Array copy.
      assert.deepStrictEqual(result.frame.res, res);
    });

    test("drops unknown keys instead of refusing the frame", () => {
      const writer = rawWriters[codec.name];
      const bytes = writer ? writer({ fw: "1.2", future: [1, 2] }) : pbFrame({ upHello: { fw: "1.2" } });
      const result = codec.decodeUp("hello", bytes);
      assert.ok(result.ok);
      assert.deepStrictEqual(result.frame, { fw: "1.2" });
    });

    for (const bad of BAD_FRAMES) {
      const writer = rawWriters[codec.name];
      if (writer === undefined && bad.pb === undefined) continue;
      test(`refuses ${bad.name} with ${bad.code}`, () => {
        const bytes = writer ? writer(bad.map) : pbFrame(bad.pb ?? {});
        assertFailure(codec.decodeUp(bad.channel, bytes), bad.code, bad.field);
      });
    }

    for (const bad of BAD_BYTES[codec.name]) {
      test(`refuses ${bad.name} with ${bad.code}`, () => {
        assertFailure(codec.decodeUp("hello", bad.bytes), bad.code);
      });
    }

    test("refuses a duplicate map key with BRIDGE_ERR_FRAME_INVALID naming it, at the frame and inside a Value", () => {
      // {"r": {"a": 1, "a": 2}} and {"fw": "1", "fw": "2"}: no codec keeps the first or the last.
      const nestedDuplicate: Record<string, Uint8Array> = {
        json: new TextEncoder().encode('{"r":{"a":1,"a":2}}'),
        cbor: hex("a1 61 72 a2 61 61 01 61 61 02"),
        pb: pbFrame({
          upTelemetry: {
            r: {
              entries: [
                { key: "a", value: { intValue: 1 } },
                { key: "a", value: { intValue: 2 } },
              ],
            },
          },
        }),
      };
      assertFailure(codec.decodeUp("telemetry", nestedDuplicate[codec.name]), "BRIDGE_ERR_FRAME_INVALID", "r.a");
      if (codec.name === "pb") return; // a repeated singular protobuf field is not a map key: the last one wins
      const frameDuplicate =
        codec.name === "json" ? new TextEncoder().encode('{"fw":"1","fw":"2"}') : hex("a2 62 6677 61 31 62 6677 61 32");
      assertFailure(codec.decodeUp("hello", frameDuplicate), "BRIDGE_ERR_FRAME_INVALID", "fw");
    });

    test("refuses a frame over maxFrameBytes before parsing it", () => {
      const bytes = up(codec, "hello", { fw: "x".repeat(200) });
      assertFailure(codec.decodeUp("hello", bytes, { maxFrameBytes: 100 }), "BRIDGE_ERR_FRAME_TOO_LARGE");
      assert.ok(codec.decodeUp("hello", bytes, { maxFrameBytes: bytes.length }).ok);
    });

    test("refuses nesting over a caller's maxDepth and accepts it at the limit", () => {
      const bytes = up(codec, "telemetry", nested(3));
      assertFailure(codec.decodeUp("telemetry", bytes, { maxDepth: 3 }), "BRIDGE_ERR_FRAME_TOO_DEEP");
      assert.ok(codec.decodeUp("telemetry", bytes, { maxDepth: 4 }).ok);
    });

    test("refuses an unknown channel with BRIDGE_ERR_UNKNOWN_CHANNEL", () => {
      const bytes = up(codec, "hello", { fw: "1" });
      assertFailure(codec.decodeUp("bogus" as UpChannel, bytes), "BRIDGE_ERR_UNKNOWN_CHANNEL");
      assertFailure(codec.decodeDown("hello" as DownChannel, bytes), "BRIDGE_ERR_UNKNOWN_CHANNEL");
    });

    test("throws BRIDGE_ERR_FRAME_ENCODE for a frame that breaks its schema", () => {
      assert.throws(
        () => up(codec, "state", { v: -1, s: {} }),
        (err) => hasErrorCode(err, "BRIDGE_ERR_FRAME_ENCODE"),
      );
      assert.throws(
        () => down(codec, "cmd", { id: "1", n: "x", a: Number.NaN }),
        (err) => hasErrorCode(err, "BRIDGE_ERR_FRAME_ENCODE"),
      );
      assert.throws(
        () => down(codec, "cmd", { id: "1", n: "x", a: () => 1 }),
        (err) => hasErrorCode(err, "BRIDGE_ERR_FRAME_ENCODE"),
      );
      const cycle: Record<string, unknown> = {};
      cycle.self = cycle;
      assert.throws(
        () => down(codec, "state", { v: 1, d: cycle }),
        (err) => hasErrorCode(err, "BRIDGE_ERR_FRAME_ENCODE"),
      );
    });

    test("turns random, truncated and bit-flipped bytes only into frames or typed decode errors", () => {
      const valid = fc.oneof(
        ...UP_CHANNELS.map((channel) =>
          upFrames[channel].map((frame) => ({ channel, bytes: up(codec, channel, frame) })),
        ),
      );
      const damaged = damagedBytes(UP_CHANNELS, valid);
      fc.assert(
        fc.property(damaged, ({ channel, bytes }) => {
          const result = codec.decodeUp(channel, bytes);
          // A frame that decoded is a whole, valid frame: it encodes again without a fault.
          if (assertFrameOrDecodeError(result)) up(codec, channel, result.frame);
        }),
        { seed: 7, numRuns: 3000 },
      );
    });

    test("turns random, truncated and bit-flipped down bytes only into frames or typed decode errors", () => {
      const valid = fc.oneof(
        ...DOWN_CHANNELS.map((channel) =>
          downFrames[channel].map((frame) => ({ channel, bytes: down(codec, channel, frame) })),
        ),
      );
      const damaged = damagedBytes(DOWN_CHANNELS, valid);
      let decoded = 0;
      fc.assert(
        fc.property(damaged, ({ channel, bytes }) => {
          const result = codec.decodeDown(channel, bytes);
          if (assertFrameOrDecodeError(result)) {
            decoded++;
            // A frame that decoded is a whole, valid frame: it encodes again without a fault.
            down(codec, channel, result.frame);
          }
        }),
        { seed: 11, numRuns: 3000 },
      );
      // Truncation at the full length and harmless flips leave frames that decode: the pass reached the decoders'
      // accepting paths, not only their first refusal.
      assert.ok(decoded > 0, "no damaged down frame decoded");
    });
  });
}
