/**
 * Commands over real MQTT with the runtime and DeviceAgent: a command sent after a session connected but before the
 * device's first message reaches it at once, and the session's greeting (its hello, or the first message of a
 * hello-less device) does not send it a second time. The next session still gets it again while it is unacknowledged.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { MqttClient } from "mqtt";
import { getCodec } from "../../codecs/index.ts";
import { collect, connectDevice, endClient, publish, subscribe, waitUntil } from "./helpers.ts";
import { type RuntimeBroker, startRuntimeBroker } from "./runtime-broker.ts";

const cbor = getCodec("cbor");

describe("a command sent between a session's connect and its first message", () => {
  let rb: RuntimeBroker;
  before(async () => {
    rb = await startRuntimeBroker();
  });
  after(async () => {
    await rb.close();
  });

  type Inbox = ReturnType<typeof collect>;

  /** The ids of the `down/cmd` frames received so far, in order. */
  function commandIds(id: string, inbox: Inbox): string[] {
    return inbox
      .filter((m) => m.topic === `devices/${id}/down/cmd`)
      .map((m) => {
        const decoded = cbor.decodeDown("cmd", m.payload);
        assert.ok(decoded.ok);
        return decoded.frame.id;
      });
  }

  /** An rpc round trip: its reply comes after every frame the agent produced for earlier messages of the session. */
  async function roundTrip(client: MqttClient, id: string, inbox: Inbox, rpcId: string): Promise<void> {
    await publish(client, `devices/${id}/up/rpc`, cbor.encodeUp("rpc", { id: rpcId, m: "ping" }));
    await waitUntil(() =>
      inbox.some((m) => m.topic === `devices/${id}/down/rpc` && cbor.decodeDown("rpc", m.payload).ok),
    );
  }

  async function connected(id: string, secret: string): Promise<{ client: MqttClient; inbox: Inbox }> {
    const client = await connectDevice(rb.url, { clientId: id, username: id, password: secret });
    const inbox = collect(client);
    await subscribe(client, `devices/${id}/down/#`);
    return { client, inbox };
  }

  async function sendCommand(id: string, name: string): Promise<string> {
    const queued = await rb.runtime.call(id, "sendCommand", [{ name }]);
    assert.ok(queued.ok);
    return (queued.value as { id: string }).id;
  }

  for (const greeting of ["hello", "telemetry"] as const) {
    test(`goes out once in that session when the device then sends ${greeting === "hello" ? "its hello" : "telemetry without a hello"}, and once in the next`, async () => {
      const id = `once-${greeting}`;
      const secret = await rb.addDevice(id, "cbor");
      const first = await connected(id, secret);
      let commandId: string;
      try {
        commandId = await sendCommand(id, "blink");
        await waitUntil(() => commandIds(id, first.inbox).length > 0);
        const up =
          greeting === "hello"
            ? cbor.encodeUp("hello", { fw: "1.0", codec: "cbor" })
            : cbor.encodeUp("telemetry", { r: { t: 1 } });
        await publish(first.client, `devices/${id}/up/${greeting}`, up);
        await roundTrip(first.client, id, first.inbox, "p1");
        assert.deepEqual(commandIds(id, first.inbox), [commandId], "one delivery in this session");
      } finally {
        await endClient(first.client);
      }
      const record = await rb.runtime.call(id, "getCommand", [commandId]);
      assert.ok(record.ok);
      assert.deepEqual(
        [(record.value as { state: string }).state, (record.value as { attempts: number }).attempts],
        ["SENT", 1],
        "one delivery, one attempt",
      );

      // Unacknowledged, so the next session gets it again, once.
      const second = await connected(id, secret);
      try {
        await publish(second.client, `devices/${id}/up/telemetry`, cbor.encodeUp("telemetry", { r: { t: 2 } }));
        await roundTrip(second.client, id, second.inbox, "p2");
        assert.deepEqual(commandIds(id, second.inbox), [commandId], "redelivered once in the next session");
      } finally {
        await endClient(second.client);
      }
    });
  }
});
