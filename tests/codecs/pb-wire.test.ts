/** Protobuf wire details beyond the shared contract: presence rules, Value kinds and compatibility of MapValue. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import protobuf from "protobufjs";
import { bridgeProtoRoot, cborCodec, jsonCodec, pbCodec } from "../../codecs/index.ts";

const Frame = bridgeProtoRoot.lookupType("agentbridge.v1.Frame");

describe("protobuf frames", () => {
  test("omit required fields at their default value and read them back as that default", () => {
    const bytes = pbCodec.encodeUp("state", { v: 0, s: {} });
    assert.equal(Buffer.from(bytes).toString("hex"), "1a02" + "1200");
    assert.deepStrictEqual(pbCodec.decodeUp("state", bytes), { ok: true, frame: { v: 0, s: {} } });
  });

  for (const [direction, channel, caseKey] of [
    ["up", "ack", "22"],
    ["down", "rpc", "52"],
  ] as const) {
    test(`write ${direction}/${channel} ok:false explicitly and refuse a frame without ok, as CBOR and JSON do`, () => {
      const frame = { id: "c-1", ok: false };
      const bytes = direction === "up" ? pbCodec.encodeUp("ack", frame) : pbCodec.encodeDown("rpc", frame);
      // ok is proto3 `optional`: field 2 is on the wire even when false (1000).
      assert.equal(Buffer.from(bytes).toString("hex"), `${caseKey}07 0a03632d31 1000`.replace(/ /g, ""));
      // {"id": "c-1"} in each codec.
      const withoutOk = [
        [pbCodec, `${caseKey}05 0a03632d31`],
        [cborCodec, "a1 626964 63632d31"],
        [jsonCodec, Buffer.from('{"id":"c-1"}').toString("hex")],
      ] as const;
      for (const [codec, hexBytes] of withoutOk) {
        const input = new Uint8Array(Buffer.from(hexBytes.replace(/ /g, ""), "hex"));
        const result = direction === "up" ? codec.decodeUp("ack", input) : codec.decodeDown("rpc", input);
        assert.equal(result.ok, false, codec.name);
        if (!result.ok) {
          assert.equal(result.code, "BRIDGE_ERR_FRAME_INVALID", `${codec.name}: ${result.message}`);
          assert.equal(result.field, "ok", codec.name);
        }
      }
    });
  }

  test("write numbers as int_value, float_value or double_value by what holds them exactly", () => {
    const Value = bridgeProtoRoot.lookupType("agentbridge.v1.Value");
    const res = (v: number) => {
      const frame = Frame.decode(pbCodec.encodeUp("ack", { id: "a", ok: true, res: v })) as unknown as {
        upAck: { res: unknown };
      };
      return Object.keys(Value.toObject(frame.upAck.res as protobuf.Message))[0];
    };
    assert.equal(res(-3), "intValue");
    assert.equal(res(21.5), "floatValue");
    assert.equal(res(0.1), "doubleValue");
  });

  test("refuses a Value that sets two kinds", () => {
    // Two oneof members on the wire (int_value then string_value): a well-behaved encoder never writes that.
    const value = "18 04" + "2a 01 78";
    const bytes = Buffer.from(`220c 0a0161 1001 1a05 ${value}`.replace(/ /g, ""), "hex");
    const result = pbCodec.decodeUp("ack", new Uint8Array(bytes));
    assert.equal(result.ok, false);
    if (!result.ok) assert.equal(result.code, "BRIDGE_ERR_FRAME_INVALID", result.message);
  });

  test("refuses another channel's Frame case written with a wrong wire type, as it refuses its own", () => {
    // Frame{up_hello{fw: "1"}} followed by field 2 (up_telemetry, a message) as a varint: a known field of Frame
    // with the wrong wire type, and another channel's case besides.
    for (const extra of ["10 05", "15 00000000", "11 0000000000000000"]) {
      const bytes = Buffer.from(`0a03 0a0131 ${extra}`.replace(/ /g, ""), "hex");
      const result = pbCodec.decodeUp("hello", new Uint8Array(bytes));
      assert.equal(result.ok, false, extra);
      if (!result.ok) assert.equal(result.code, "BRIDGE_ERR_FRAME_DECODE", result.message);
    }
  });

  test("skips unknown fields up to the highest field number (2^29-1) and refuses keys beyond it", () => {
    // Hello{fw: "1", field 536870911: varint 1}: the key is 0xfffffff8, a five-byte varint.
    const highest = Buffer.from("0a09 0a0131 f8ffffff0f 01".replace(/ /g, ""), "hex");
    assert.deepStrictEqual(Frame.toObject(Frame.decode(highest)), { upHello: { fw: "1" } });
    assert.deepStrictEqual(pbCodec.decodeUp("hello", new Uint8Array(highest)), { ok: true, frame: { fw: "1" } });
    // A key of 2^32: field number 2^29, which no .proto can declare.
    const beyond = Buffer.from("0a09 0a0131 8080808010 01".replace(/ /g, ""), "hex");
    const result = pbCodec.decodeUp("hello", new Uint8Array(beyond));
    assert.equal(result.ok, false);
    if (!result.ok) assert.equal(result.code, "BRIDGE_ERR_FRAME_DECODE", result.message);
  });

  test("refuses 64 KiB of nested lists as too deep without crashing", () => {
    // Value{list_value: ListValue{values: Value{...}}} nested until the buffer is full.
    let inner = Buffer.from("0800", "hex");
    while (inner.length < 60000) {
      const list = Buffer.concat([Buffer.from([0x0a]), varint(inner.length), inner]);
      inner = Buffer.concat([Buffer.from([0x3a]), varint(list.length), list]);
    }
    const ack = Buffer.concat([Buffer.from("0a01611001", "hex"), Buffer.from([0x1a]), varint(inner.length), inner]);
    const frame = Buffer.concat([Buffer.from([0x22]), varint(ack.length), ack]);
    const result = pbCodec.decodeUp("ack", new Uint8Array(frame));
    assert.equal(result.ok, false);
    if (!result.ok) assert.equal(result.code, "BRIDGE_ERR_FRAME_TOO_DEEP", result.message);
  });

  test("MapValue is wire-compatible with map<string, Value> for firmware that declares a map", () => {
    const alt = protobuf.parse(`syntax = "proto3";
      message Value { oneof kind { sint64 int_value = 3; string string_value = 5; } }
      message Readings { map<string, Value> entries = 1; }`).root;
    const readings = alt
      .lookupType("Readings")
      .encode({ entries: { temp: { intValue: 21 }, unit: { stringValue: "C" } } })
      .finish();
    const telemetry = Buffer.concat([Buffer.from([0x12]), varint(readings.length), readings]);
    const frame = Buffer.concat([Buffer.from([0x12]), varint(telemetry.length), telemetry]);
    const result = pbCodec.decodeUp("telemetry", new Uint8Array(frame));
    assert.deepStrictEqual(result, { ok: true, frame: { r: { temp: 21, unit: "C" } } });
  });
});

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}
