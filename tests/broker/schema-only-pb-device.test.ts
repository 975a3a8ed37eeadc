/**
 * A constrained protobuf device (nanopb-style: fixed buffers, no JSON, no CBOR) in front of the real runtime and
 * DeviceAgent, with `maxFrame` 256 and no stream capability. It encodes and decodes with nothing but the published
 * codecs/bridge.proto, loaded by protobufjs here, never the bridge's own codecs: every byte it receives must be a
 * `Frame` of that schema, of the topic's channel, within its `maxFrame`, and nothing the schema cannot hold.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import type { MqttClient } from "mqtt";
import protobuf from "protobufjs";
import { collect, connectDevice, endClient, publish, subscribe, waitUntil } from "./helpers.ts";
import { type RuntimeBroker, startRuntimeBroker } from "./runtime-broker.ts";

const MAX_FRAME = 256;
const ID = "pb-mcu-1";
const schema = protobuf.loadSync(fileURLToPath(new URL("../../codecs/bridge.proto", import.meta.url)));
const Frame = schema.lookupType("agentbridge.v1.Frame");
const DOWN_CASES: Record<string, string> = {
  identity: "downIdentity",
  state: "downState",
  cmd: "downCmd",
  rpc: "downRpc",
  reason: "downReason",
  error: "downError",
};

type Received = { topic: string; payload: Buffer };
interface Decoded {
  channel: string;
  body: Record<string, unknown>;
}

function encode(body: Record<string, unknown>): Uint8Array {
  const problem = Frame.verify(body);
  assert.equal(problem, null, `the test's own frame: ${problem}`);
  return Frame.encode(Frame.create(body)).finish();
}

/** What firmware holding only bridge.proto would make of a down message; fails on anything else. */
function decodeWithSchemaOnly({ topic, payload }: Received): Decoded {
  const channel = topic.split("/")[3] ?? "";
  assert.ok(payload.byteLength <= MAX_FRAME, `${topic}: ${payload.byteLength} bytes, over maxFrame ${MAX_FRAME}`);
  assert.notEqual(payload[0], 0x7b, `${topic} is JSON text`);
  const message = Frame.decode(payload);
  // Re-encoding gives the same bytes only when every field the bridge wrote is one the schema declares.
  assert.deepEqual(Buffer.from(Frame.encode(message).finish()), payload, `${topic}: fields outside bridge.proto`);
  const object = Frame.toObject(message, { oneofs: true, longs: Number, defaults: true });
  assert.equal(object.body, DOWN_CASES[channel], `${topic}: the Frame's case is not the topic's channel`);
  return { channel, body: object[object.body] };
}

let rb: RuntimeBroker;
let client: MqttClient | undefined;
before(async () => {
  rb = await startRuntimeBroker();
});
after(async () => {
  if (client) await endClient(client, true);
  await rb.close();
});

test("a maxFrame-256 protobuf device decodes every frame it gets with bridge.proto alone", async () => {
  const secret = await rb.addDevice(ID, "pb");
  client = await connectDevice(rb.url, { clientId: ID, username: ID, password: secret });
  const received = collect(client);
  await subscribe(client, `devices/${ID}/down/#`);
  const up = (channel: string, body: Record<string, unknown>) =>
    publish(client as MqttClient, `devices/${ID}/up/${channel}`, encode(body));
  const frames = () => received.map(decodeWithSchemaOnly);
  const count = (channel: string) => frames().filter((f) => f.channel === channel).length;

  await up("hello", {
    upHello: { fw: "0.9.1", codec: "pb", stream: false, maxFrame: MAX_FRAME, metrics: ["t", "rssi"] },
  });
  await up("telemetry", { upTelemetry: { rv: [{ floatValue: 21.5 }, { intValue: -67 }] } });
  await up("state", { upState: { v: 0, s: { entries: [{ key: "led", value: { stringValue: "on" } }] } } });
  assert.ok((await rb.runtime.call(ID, "setDesired", [{ led: "off" }])).ok);
  assert.ok((await rb.runtime.call(ID, "setDesired", [{ note: "x".repeat(300) }])).ok);
  const queued = await rb.runtime.call(ID, "sendCommand", [{ name: "blink", args: { times: 2 } }]);
  assert.ok(queued.ok);
  await up("rpc", { upRpc: { id: "r1", m: "ping" } });
  await up("rpc", { upRpc: { id: "r2", m: "getShadow" } });
  await up("reason", { upReason: { id: "q1", q: "Why?" } });
  await up("telemetry", { upTelemetry: { ts: 1 } });
  await waitUntil(() => count("rpc") === 2 && count("cmd") === 1 && count("error") === 3);

  const all = frames();
  const of = (channel: string) => all.filter((f) => f.channel === channel).map((f) => f.body);
  assert.deepEqual(of("identity"), [], "a binary device gets no identity frame");
  assert.deepEqual(
    of("state").map((s) => s.v),
    [0, 1],
    "the full state after hello, then the delta that fits",
  );
  const cmd = of("cmd")[0];
  assert.equal(cmd?.n, "blink");
  const commandId = String(cmd?.id);
  await up("ack", { upAck: { id: commandId, ok: true } });
  const [ping, shadow] = of("rpc");
  assert.equal(ping?.ok, true);
  assert.deepEqual([shadow?.id, shadow?.ok, shadow?.err], ["r2", false, "BRIDGE_ERR_FRAME_TOO_LARGE"]);
  assert.deepEqual(
    of("error").map((e) => [e.code, e.id ?? null, e.v ?? null]),
    [
      ["BRIDGE_ERR_FRAME_TOO_LARGE", null, 2],
      ["BRIDGE_ERR_ENGINE_NOT_CONFIGURED", "q1", null],
      ["BRIDGE_ERR_FRAME_INVALID", null, null],
    ],
  );
  // The PUBACK of the ack follows its commit.
  const done = await rb.runtime.call(ID, "getCommand", [commandId]);
  assert.ok(done.ok);
  assert.equal((done.value as { state: string }).state, "SUCCEEDED");
  const stored = await rb.runtime.call(ID, "queryTelemetry", [{}]);
  assert.ok(stored.ok);
  assert.deepEqual(
    (stored.value as Array<{ metric: string; value: number }>).map((r) => [r.metric, r.value]).sort(),
    [
      ["rssi", -67],
      ["t", 21.5],
    ],
    "readings sent by position are stored by name",
  );
});

test("a refusal whose field path holds the device's own 300-character key keeps the reason at its end", async () => {
  // The broker refuses the frame before any agent sees it: its message is the path, then the rule, over 300 bytes.
  const id = "pb-mcu-long-key";
  const secret = await rb.addDevice(id, "pb");
  const device = await connectDevice(rb.url, { clientId: id, username: id, password: secret });
  try {
    const received = collect(device);
    await subscribe(device, `devices/${id}/down/#`);
    const up = (channel: string, body: Record<string, unknown>) =>
      publish(device, `devices/${id}/up/${channel}`, encode(body));
    await up("hello", { upHello: { fw: "0.9.1", codec: "pb", stream: false, maxFrame: MAX_FRAME } });
    const key = "k".repeat(300);
    const twice = [key, key].map((k) => ({ key: k, value: { stringValue: "on" } }));
    await up("state", { upState: { v: 0, s: { entries: twice } } });
    await waitUntil(() => received.some((m) => m.topic === `devices/${id}/down/error`));
    const errors = received.filter((m) => m.topic === `devices/${id}/down/error`).map(decodeWithSchemaOnly);
    assert.equal(errors.length, 1);
    const { code, msg } = errors[0].body as { code: string; msg: string };
    assert.equal(code, "BRIDGE_ERR_FRAME_INVALID");
    assert.match(msg, /^s\.k+\u2026k+: duplicate map key$/, "the path's beginning, an ellipsis, then the reason");
  } finally {
    await endClient(device, true);
  }
});
