/**
 * Identity over real MQTT with the runtime and DeviceAgent: a protocol-enabled session gets exactly one identity
 * frame (the runtime's, held by the broker until the device subscribed), whatever its hello says.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { getCodec } from "../../codecs/index.ts";
import { collect, connectDevice, endClient, publish, subscribe, waitUntil } from "./helpers.ts";
import { type RuntimeBroker, startRuntimeBroker } from "./runtime-broker.ts";

const json = getCodec("json");

describe("identity frames of a JSON device", () => {
  let rb: RuntimeBroker;
  before(async () => {
    rb = await startRuntimeBroker();
  });
  after(async () => {
    await rb.close();
  });

  /** One session: subscribe, hello, an rpc whose reply shows everything before it was sent; identities counted. */
  async function session(id: string, secret: string, n: number): Promise<number> {
    const client = await connectDevice(rb.url, { clientId: id, username: id, password: secret });
    try {
      const received = collect(client);
      await subscribe(client, `devices/${id}/down/#`);
      await publish(client, `devices/${id}/up/hello/json`, json.encodeUp("hello", { fw: "1.0", codec: "json" }));
      await publish(client, `devices/${id}/up/rpc`, json.encodeUp("rpc", { id: `p${n}`, m: "ping" }));
      await waitUntil(() => received.some((m) => m.topic === `devices/${id}/down/rpc`));
      const rpc = received.find((m) => m.topic === `devices/${id}/down/rpc`)!;
      assert.equal(rpc.payload[0], 0x7b, "the device's frames are JSON");
      const identities = received.filter((m) => m.topic === `devices/${id}/down/identity`);
      for (const frame of identities) {
        const decoded = json.decodeDown("identity", frame.payload);
        assert.ok(decoded.ok);
        assert.equal(decoded.frame.id, id);
      }
      return identities.length;
    } finally {
      await endClient(client);
    }
  }

  test("a device provisioned as json gets exactly one identity in every session, hello or not", async () => {
    const secret = await rb.addDevice("panel-json", "json");
    assert.deepEqual([await session("panel-json", secret, 1), await session("panel-json", secret, 2)], [1, 1]);
  });

  test("a device provisioned without a codec that reveals JSON only in its hello gets identity from its next session on, once", async () => {
    const secret = await rb.addDevice("panel-nocodec");
    // The first session opened as the default (cbor): its protocol flag is off for the whole session.
    assert.equal(await session("panel-nocodec", secret, 1), 0);
    assert.equal(rb.registry.get("panel-nocodec")?.codec, "json", "the hello's codec is remembered");
    assert.deepEqual([await session("panel-nocodec", secret, 2), await session("panel-nocodec", secret, 3)], [1, 1]);
  });
});
