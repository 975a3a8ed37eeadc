/**
 * Golden vectors (tests/codecs/golden/vectors.json, also printed in docs/protocol.md): fixed CBOR and protobuf bytes
 * for frames of every channel, checked both ways, so a wire change can never slip in unnoticed. Each frame is stored
 * in the JSON encoding and read through the JSON codec.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  type Codec,
  DOWN_CHANNELS,
  type DownChannel,
  UP_CHANNELS,
  type UpChannel,
  getCodec,
} from "../../codecs/index.ts";
import { hex } from "./raw-writers.ts";

interface Vector {
  name: string;
  direction: "up" | "down";
  channel: string;
  frame: unknown;
  cbor: string;
  pb: string;
}

const vectors = JSON.parse(readFileSync(new URL("./golden/vectors.json", import.meta.url), "utf8")) as Vector[];

function decode(codec: Codec, v: Vector, bytes: Uint8Array) {
  return v.direction === "up"
    ? codec.decodeUp(v.channel as UpChannel, bytes)
    : codec.decodeDown(v.channel as DownChannel, bytes);
}

function encode(codec: Codec, v: Vector, frame: unknown): string {
  const bytes =
    v.direction === "up"
      ? codec.encodeUp(v.channel as UpChannel, frame as never)
      : codec.encodeDown(v.channel as DownChannel, frame as never);
  return Buffer.from(bytes).toString("hex");
}

test("the golden vectors cover every up and down channel", () => {
  for (const channel of UP_CHANNELS)
    assert.ok(
      vectors.some((v) => v.direction === "up" && v.channel === channel),
      channel,
    );
  for (const channel of DOWN_CHANNELS) {
    assert.ok(
      vectors.some((v) => v.direction === "down" && v.channel === channel),
      channel,
    );
  }
});

for (const v of vectors) {
  for (const name of ["cbor", "pb"] as const) {
    test(`the ${name} golden vector "${v.name}" encodes to its bytes and decodes back to its frame`, () => {
      const fromJson = decode(getCodec("json"), v, new TextEncoder().encode(JSON.stringify(v.frame)));
      assert.ok(fromJson.ok, fromJson.ok ? "" : fromJson.message);
      const codec = getCodec(name);
      assert.equal(encode(codec, v, fromJson.frame), v[name]);
      const back = decode(codec, v, hex(v[name]));
      assert.ok(back.ok, back.ok ? "" : back.message);
      assert.deepStrictEqual(back.frame, fromJson.frame);
    });
  }
}

test("every golden vector's bytes are printed in docs/protocol.md, so the docs stay true", () => {
  const doc = readFileSync(new URL("../../docs/protocol.md", import.meta.url), "utf8");
  // The docs print bytes as spaced pairs ("a5 62 66"), one line per encoding.
  const spaced = (h: string) => h.replace(/(..)(?!$)/g, "$1 ");
  for (const v of vectors) {
    for (const name of ["cbor", "pb"] as const) {
      assert.ok(
        doc.includes(`${name.padEnd(5)} ${spaced(v[name])}\n`),
        `${v.name}: ${name} ${v[name]} is not in the docs`,
      );
    }
  }
});
