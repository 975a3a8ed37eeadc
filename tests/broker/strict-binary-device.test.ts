/**
 * A strict CBOR device (it can parse nothing else) in front of the real runtime and DeviceAgent: a codec suffix on
 * one of its up messages names that message's codec only, never the codec of what the device receives.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { MqttClient } from "mqtt";
import type { DownChannel } from "../../codecs/frames.ts";
import { getCodec } from "../../codecs/index.ts";
import { collect, connectDevice, endClient, publish, subscribe, waitUntil } from "./helpers.ts";
import { type RuntimeBroker, startRuntimeBroker } from "./runtime-broker.ts";

const cbor = getCodec("cbor");
const json = getCodec("json");

/** Decodes every frame the device got as CBOR, as firmware with only a CBOR parser would; fails on anything else. */
function strictCbor(received: Array<{ topic: string; payload: Buffer }>): Array<{ channel: string; frame: unknown }> {
  return received.map(({ topic, payload }) => {
    const channel = topic.split("/")[3] as DownChannel;
    assert.notEqual(payload[0], 0x7b, `${topic} is JSON text: ${payload.toString()}`);
    const decoded = cbor.decodeDown(channel, payload);
    assert.ok(decoded.ok, `${topic} does not decode as CBOR`);
    return { channel, frame: decoded.frame };
  });
}

describe("a strict CBOR device that publishes one /json message", () => {
  let rb: RuntimeBroker;
  let client: MqttClient | undefined;
  before(async () => {
    rb = await startRuntimeBroker();
  });
  after(async () => {
    if (client) await endClient(client, true);
    await rb.close();
  });

  test("receives its command, its rpc replies (also to a /json rpc) and its refusals in CBOR", async () => {
    const secret = await rb.addDevice("dev-3", "cbor");
    client = await connectDevice(rb.url, { clientId: "dev-3", username: "dev-3", password: secret });
    const received = collect(client);
    await subscribe(client, "devices/dev-3/down/#");
    // No hello: the registry record (cbor) is all the bridge knows, and a suffix must not override it.
    await publish(client, "devices/dev-3/up/telemetry/json", json.encodeUp("telemetry", { r: { t: 21 } }));
    const queued = await rb.runtime.call("dev-3", "sendCommand", [{ name: "blink", args: { times: 2 } }]);
    assert.ok(queued.ok);
    const commandId = (queued.value as { id: string }).id;
    await publish(client, "devices/dev-3/up/rpc", cbor.encodeUp("rpc", { id: "r1", m: "ping" }));
    await publish(client, "devices/dev-3/up/rpc/json", json.encodeUp("rpc", { id: "r2", m: "ping" }));
    await publish(client, "devices/dev-3/up/rpc/json", json.encodeUp("rpc", { id: "r3", m: "no-such-method" }));
    await waitUntil(() => received.filter((m) => m.topic.endsWith("/down/rpc")).length === 3);
    await waitUntil(() => received.some((m) => m.topic.endsWith("/down/cmd")));

    const frames = strictCbor(received);
    const cmd = frames.find((f) => f.channel === "cmd")?.frame as { id: string; n: string };
    assert.equal(cmd.id, commandId);
    assert.equal(cmd.n, "blink");
    const rpcs = frames.filter((f) => f.channel === "rpc").map((f) => f.frame as { id: string; ok: boolean });
    assert.deepEqual(
      rpcs.map((r) => [r.id, r.ok]),
      [
        ["r1", true],
        ["r2", true],
        ["r3", false],
      ],
    );
    const stored = await rb.runtime.call("dev-3", "queryTelemetry", [{}]);
    assert.ok(stored.ok);
    assert.equal((stored.value as unknown[]).length, 1, "the /json telemetry itself was decoded as JSON and stored");
  });
});
