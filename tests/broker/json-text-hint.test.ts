/**
 * JSON text published without the `/json` suffix by a binary device is refused with a message that says so, in the
 * device's own codec: the decoder's reason alone ("length runs past the frame at byte 9") gave no clue.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { MqttClient } from "mqtt";
import { looksLikeJsonObject } from "../../broker/json-text-hint.ts";
import type { CodecName } from "../../codecs/frames.ts";
import { getCodec } from "../../codecs/index.ts";
import {
  collect,
  connectDevice,
  endClient,
  publish,
  startTestBroker,
  subscribe,
  type TestBroker,
  waitUntil,
} from "./helpers.ts";

describe("a refused payload that is JSON text read as a binary codec", () => {
  let tb: TestBroker;
  const clients: MqttClient[] = [];

  before(async () => {
    tb = await startTestBroker();
  });
  after(async () => {
    for (const c of clients) await endClient(c, true);
    await tb.close();
  });

  async function device(id: string, codec: CodecName) {
    const secret = await tb.addDevice(id, codec);
    const client = await connectDevice(tb.url, { clientId: id, username: id, password: secret });
    clients.push(client);
    const inbox = collect(client);
    await subscribe(client, `devices/${id}/down/#`);
    /** Publishes `payload` and returns the error frame it got, decoded in the device's codec. */
    const refusal = async (topic: string, payload: string | Uint8Array) => {
      const before = inbox.length;
      await publish(client, `devices/${id}/up/${topic}`, payload);
      await waitUntil(() => inbox.length > before);
      const reply = inbox.at(-1)!;
      assert.equal(reply.topic, `devices/${id}/down/error`);
      assert.notEqual(reply.payload[0], 0x7b, "a binary device never receives JSON text");
      const decoded = getCodec(codec).decodeDown("error", reply.payload);
      assert.ok(decoded.ok);
      return decoded.frame;
    };
    return refusal;
  }

  for (const codec of ["cbor", "pb"] as const) {
    test(`a ${codec} device is told it sent JSON text and how to send it`, async () => {
      const refusal = await device(`dev-${codec}`, codec);
      const frame = await refusal("telemetry", ' {"r":{"t":1}}\n');
      assert.equal(frame.code, "BRIDGE_ERR_FRAME_DECODE");
      assert.match(frame.msg, new RegExp(`^payload looks like JSON text but was read as ${codec}: `));
      assert.match(frame.msg, /publish it on \.\.\.\/up\/telemetry\/json \(/);
    });
  }

  test("other refusals keep the decoder's own message", async () => {
    const refusal = await device("dev-plain", "cbor");
    const garbage = await refusal("telemetry", Buffer.from([0xff, 0x00]));
    assert.doesNotMatch(garbage.msg, /JSON/);
    // The suffix named the codec: the device meant CBOR, whatever the bytes look like.
    const suffixed = await refusal("telemetry/cbor", '{"r":{"t":1}}');
    assert.doesNotMatch(suffixed.msg, /looks like JSON/);
    const brokenJson = await refusal("telemetry/json", '{"r":');
    assert.match(brokenJson.msg, /^payload is not JSON/);
  });

  test("only a JSON object's shape counts as JSON text", () => {
    assert.equal(looksLikeJsonObject(Buffer.from('{"a":1}')), true);
    assert.equal(looksLikeJsonObject(Buffer.from(" \t\r\n{}\n")), true);
    assert.equal(looksLikeJsonObject(Buffer.from("{")), false);
    assert.equal(looksLikeJsonObject(Buffer.from('{"a":1')), false);
    assert.equal(looksLikeJsonObject(Buffer.from([0x20, 0x01])), false);
    assert.equal(looksLikeJsonObject(Buffer.alloc(0)), false);
  });
});
