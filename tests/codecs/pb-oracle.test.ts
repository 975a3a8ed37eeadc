/**
 * The hand-written protobuf reader and writer checked against protobufjs as an independent implementation of the same
 * bridge.proto: identical bytes for generated frames of every channel, and, on damaged bytes, wherever both accept
 * the bytes they read the same frame. (protobufjs reads a 32-bit varint, such as a bool, as five bytes and skips
 * five more, so an over-long but valid varint can derail it where the bridge's reader follows the spec.)
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import type protobuf from "protobufjs";
import {
  bridgeProtoRoot,
  DOWN_CHANNELS,
  DOWN_SCHEMAS,
  type FrameSchema,
  pbCodec,
  UP_CHANNELS,
  UP_SCHEMAS,
} from "../../codecs/index.ts";
import { checkFrame } from "../../codecs/schema/check.ts";
import { downFrames, upFrames } from "./arbitraries.ts";
import { frameFromPb, frameToPb } from "./pb-oracle/pb-frame.ts";
import type { PbObject } from "./pb-oracle/pb-value.ts";

const Frame = bridgeProtoRoot.lookupType("agentbridge.v1.Frame");
const caseOf = (direction: string, channel: string) => `${direction}${channel[0].toUpperCase()}${channel.slice(1)}`;

/** Fields of a Frame case declared proto3 `optional`, read from bridge.proto itself. */
function optionalFields(direction: string, channel: string): Set<string> {
  const type = Frame.fields[caseOf(direction, channel)].resolvedType as protobuf.Type;
  return new Set(type.fieldsArray.filter((f) => f.options?.proto3_optional === true).map((f) => f.name));
}

function protobufjsEncode(direction: string, channel: string, schema: FrameSchema, frame: unknown): string {
  const body = frameToPb(schema, checkFrame(schema, frame), 1, 16, "", optionalFields(direction, channel));
  return Buffer.from(Frame.encode({ [caseOf(direction, channel)]: body }).finish()).toString("hex");
}

/** What protobufjs reads from bytes, as a checked frame, or undefined when it or the schema refuses them. */
function protobufjsDecode(direction: string, channel: string, schema: FrameSchema, bytes: Uint8Array): unknown {
  try {
    const message = Frame.decode(bytes) as unknown as PbObject;
    const body = message[caseOf(direction, channel)];
    if (body === undefined || body === null) return undefined;
    return checkFrame(schema, frameFromPb(schema, body as PbObject, 1, 16, ""));
  } catch {
    return undefined;
  }
}

describe("protobuf against protobufjs", () => {
  for (const channel of UP_CHANNELS) {
    test(`writes the same bytes as protobufjs for generated up/${channel} frames`, () => {
      fc.assert(
        fc.property(upFrames[channel], (frame) => {
          const ours = Buffer.from(pbCodec.encodeUp(channel, frame as never)).toString("hex");
          assert.equal(ours, protobufjsEncode("up", channel, UP_SCHEMAS[channel], frame));
        }),
        { seed: 5, numRuns: 150 },
      );
    });
  }
  for (const channel of DOWN_CHANNELS) {
    test(`writes the same bytes as protobufjs for generated down/${channel} frames`, () => {
      fc.assert(
        fc.property(downFrames[channel], (frame) => {
          const ours = Buffer.from(pbCodec.encodeDown(channel, frame as never)).toString("hex");
          assert.equal(ours, protobufjsEncode("down", channel, DOWN_SCHEMAS[channel], frame));
        }),
        { seed: 5, numRuns: 150 },
      );
    });
  }

  test("reads integers at the edges of the safe range as protobufjs does (-2^53 is a bigint, not a number)", () => {
    const s = { a: -(2n ** 53n), b: 2n ** 53n, c: -(2 ** 53 - 1), d: 2 ** 53 - 1, e: -(2n ** 53n) - 1n };
    const bytes = pbCodec.encodeUp("state", { v: 1, s });
    const ours = pbCodec.decodeUp("state", bytes);
    assert.ok(ours.ok, ours.ok ? "" : ours.message);
    assert.deepStrictEqual(ours.frame, { v: 1, s });
    assert.deepStrictEqual(protobufjsDecode("up", "state", UP_SCHEMAS.state, bytes), ours.frame);
  });

  test("accepts from damaged bytes only frames that protobufjs reads the same way", () => {
    const valid = fc.oneof(
      ...UP_CHANNELS.map((channel) =>
        upFrames[channel].map((frame) => ({ channel, bytes: pbCodec.encodeUp(channel, frame as never) })),
      ),
    );
    const damaged = fc
      .tuple(valid, fc.array(fc.nat(), { minLength: 1, maxLength: 3 }), fc.nat())
      .map(([v, flips, cut]) => {
        const bytes = v.bytes.slice(0, v.bytes.length - (cut % 3));
        for (const f of flips) if (bytes.length > 0) bytes[f % bytes.length] ^= 1 << (f % 8);
        return { channel: v.channel, bytes };
      });
    let accepted = 0;
    fc.assert(
      fc.property(damaged, ({ channel, bytes }) => {
        const ours = pbCodec.decodeUp(channel, bytes);
        if (!ours.ok) return;
        const theirs = protobufjsDecode("up", channel, UP_SCHEMAS[channel], bytes);
        if (theirs === undefined) return;
        accepted++;
        assert.deepStrictEqual(ours.frame, theirs);
      }),
      { seed: 9, numRuns: 3000 },
    );
    // The check means something only if damaged frames do get through.
    assert.ok(accepted > 100, `only ${accepted} damaged frames decoded by both`);
  });
});
