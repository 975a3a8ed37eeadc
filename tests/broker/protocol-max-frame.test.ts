/**
 * Over real MQTT with the runtime and DeviceAgent: the runtime's identity frame is measured against the maxFrame of
 * the device's last hello like every other frame. A JSON device whose maxFrame cannot hold it gets, in its next
 * session, a small `down/error` BRIDGE_ERR_FRAME_TOO_LARGE instead, and nothing larger than it said it can take.
 * The broker's own refusals (input that never reached the agent) keep within it too, in later sessions as well.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { getCodec } from "../../codecs/index.ts";
import type { ErrorFrame } from "../../codecs/frames.ts";
import { collect, connectDevice, endClient, publish, subscribe, waitUntil } from "./helpers.ts";
import { type RuntimeBroker, startRuntimeBroker } from "./runtime-broker.ts";

const json = getCodec("json");
const cbor = getCodec("cbor");

describe("protocol frames and a JSON device's maxFrame", () => {
  let rb: RuntimeBroker;
  before(async () => {
    rb = await startRuntimeBroker();
  });
  after(async () => {
    await rb.close();
  });

  test("an identity frame larger than the device's maxFrame is replaced by an error frame that fits", async () => {
    const id = `panel-${"l".repeat(50)}`;
    const secret = await rb.addDevice(id, "json");
    // {"name":"DeviceAgent","id":"<56 characters>","pv":1,"t":<13 digits>} is about 105 bytes.
    const maxFrame = 90;
    const first = await connectDevice(rb.url, { clientId: id, username: id, password: secret });
    try {
      const inbox = collect(first);
      await subscribe(first, `devices/${id}/down/#`);
      await publish(first, `devices/${id}/up/hello`, json.encodeUp("hello", { fw: "1.0", codec: "json", maxFrame }));
      await publish(first, `devices/${id}/up/rpc`, json.encodeUp("rpc", { id: "p1", m: "ping" }));
      await waitUntil(() => inbox.some((m) => m.topic === `devices/${id}/down/rpc`));
      const identity = inbox.find((m) => m.topic === `devices/${id}/down/identity`);
      assert.ok(identity !== undefined && identity.payload.byteLength > maxFrame, "sent before any maxFrame was known");
    } finally {
      await endClient(first);
    }

    const second = await connectDevice(rb.url, { clientId: id, username: id, password: secret });
    try {
      const inbox = collect(second);
      await subscribe(second, `devices/${id}/down/#`);
      await publish(second, `devices/${id}/up/rpc`, json.encodeUp("rpc", { id: "p2", m: "ping" }));
      await waitUntil(() => inbox.some((m) => m.topic === `devices/${id}/down/rpc`));
      assert.deepEqual(
        inbox.filter((m) => m.topic === `devices/${id}/down/identity`),
        [],
      );
      const errors = inbox.filter((m) => m.topic === `devices/${id}/down/error`);
      assert.equal(errors.length, 1);
      const error = json.decodeDown("error", errors[0].payload);
      assert.ok(error.ok);
      assert.equal(error.frame.code, "BRIDGE_ERR_FRAME_TOO_LARGE");
      assert.equal(error.frame.v, undefined, "no desired version: this is not the shadow");
      for (const m of inbox) assert.ok(m.payload.byteLength <= maxFrame, `${m.topic} within maxFrame`);
    } finally {
      await endClient(second);
    }
  });

  test("the broker's refusals of what never reached the agent are cut to the maxFrame, in later sessions too", async () => {
    const id = "mf-broker-refusals";
    const secret = await rb.addDevice(id, "cbor");
    const maxFrame = 64;
    // Refused by the broker's topic check, naming the channel: a 200-character name makes a 240-byte error frame.
    const badTopic = `devices/${id}/up/${"c".repeat(200)}`;
    /** Publishes the refused message, then an rpc whose answer comes after the refusal; returns the refusals. */
    const refusals = async (hello: boolean): Promise<Array<{ bytes: number; frame: ErrorFrame }>> => {
      const client = await connectDevice(rb.url, { clientId: id, username: id, password: secret });
      try {
        const inbox = collect(client);
        await subscribe(client, `devices/${id}/down/#`);
        if (hello) await publish(client, `devices/${id}/up/hello`, cbor.encodeUp("hello", { fw: "1.0", maxFrame }));
        await publish(client, badTopic, cbor.encodeUp("telemetry", { r: { t: 1 } }));
        await publish(client, `devices/${id}/up/rpc`, cbor.encodeUp("rpc", { id: "p", m: "ping" }));
        await waitUntil(() => inbox.some((m) => m.topic === `devices/${id}/down/rpc`));
        return inbox
          .filter((m) => m.topic === `devices/${id}/down/error`)
          .map((m) => {
            const decoded = cbor.decodeDown("error", m.payload);
            assert.ok(decoded.ok);
            return { bytes: m.payload.byteLength, frame: decoded.frame };
          });
      } finally {
        await endClient(client);
      }
    };
    for (const [session, hello] of [
      ["the hello's", true],
      ["the next, without a hello", false],
    ] as const) {
      const errors = await refusals(hello);
      assert.equal(errors.length, 1, session);
      const [{ bytes, frame }] = errors;
      assert.ok(bytes <= maxFrame, `${session}: ${bytes} bytes`);
      assert.equal(frame.code, "BRIDGE_ERR_UNKNOWN_CHANNEL");
      // Cut in the middle: the beginning and the end kept around one ellipsis.
      const whole = `no up channel named ${"c".repeat(200)}`;
      const [head = "", tail = "", ...more] = frame.msg.split("\u2026");
      assert.ok(
        head.startsWith("no up") && whole.startsWith(head) && /^c+$/.test(tail) && more.length === 0,
        frame.msg,
      );
    }
  });

  test("a hello that changes the device's codec: frames are measured in the codec they leave in", async () => {
    // Registered as CBOR; its hello says JSON. The broker encodes every later frame in JSON, so the agent must measure
    // them in JSON too: measured in the codec the session opened with (CBOR, about half the size), a JSON frame over
    // the device's maxFrame went out.
    const id = "mf-codec-switch";
    const secret = await rb.addDevice(id, "cbor");
    // The ping result is 59 bytes of JSON (33 of CBOR); the refusal that replaces it, 57.
    const maxFrame = 57;
    const client = await connectDevice(rb.url, { clientId: id, username: id, password: secret });
    try {
      const inbox = collect(client);
      await subscribe(client, `devices/${id}/down/#`);
      await publish(
        client,
        `devices/${id}/up/hello/json`,
        json.encodeUp("hello", { fw: "1.0", codec: "json", maxFrame }),
      );
      await publish(client, `devices/${id}/up/rpc/json`, json.encodeUp("rpc", { id: "p1", m: "ping" }));
      await waitUntil(() => inbox.some((m) => m.topic === `devices/${id}/down/rpc`));
      for (const m of inbox) assert.ok(m.payload.byteLength <= maxFrame, `${m.topic} is ${m.payload.byteLength} bytes`);
      const rpc = json.decodeDown(
        "rpc",
        inbox.find((m) => m.topic === `devices/${id}/down/rpc`)?.payload ?? Buffer.alloc(0),
      );
      assert.ok(rpc.ok);
      assert.equal(rpc.frame.ok, false);
      assert.equal(rpc.frame.err, "BRIDGE_ERR_FRAME_TOO_LARGE");
    } finally {
      await endClient(client);
    }
  });
});
