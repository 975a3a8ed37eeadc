/**
 * Telemetry frames the agent refuses get their `down/error`s in the order of the frames, each before its own frame's
 * PUBACK, on the device's own connection (frames arriving together are committed as one batch, so the PUBACKs may
 * follow all the errors). Telemetry frames carry no id, so this order is how firmware tells which frame was refused
 * (docs/protocol.md, "Metric aliases"; the fleet simulator's constrained device relies on it).
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import { after, test } from "node:test";
import mqtt from "mqtt";
import type { Bridge } from "../../app/bridge.ts";
import { cborCodec } from "../../codecs/index.ts";
import { createLoopbackBridge, provisionDevices } from "../support/in-process-bridge.ts";
import { makeTempDir } from "./support/bridge-process.ts";

const dataDir = makeTempDir("bridge-refusal-order-");
let bridge: Bridge | undefined;
after(async () => {
  await bridge?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test("alias rows sent before any hello with metrics: the k-th error comes before the k-th frame's PUBACK", async () => {
  bridge = await createLoopbackBridge({ dataDir, apiToken: "refusal-order-token-0123456789" });
  const addresses = await bridge.start();
  const [device] = await provisionDevices(bridge, ["rv-order-1"], "cbor");
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${addresses.mqtt?.port}`, {
    clientId: device.id,
    username: device.id,
    password: device.secret,
    protocolVersion: 4,
    reconnectPeriod: 0,
  });
  try {
    const order: string[] = [];
    client.on("message", (topic, payload) => {
      if (!topic.endsWith("/down/error")) return;
      const decoded = cborCodec.decodeDown("error", payload);
      order.push(decoded.ok ? `error ${decoded.frame.code}` : "error (undecodable)");
    });
    await client.subscribeAsync(`devices/${device.id}/down/error`, { qos: 1 });
    const frames = 3;
    await Promise.all(
      Array.from({ length: frames }, async (_, i) => {
        const payload = Buffer.from(cborCodec.encodeUp("telemetry", { rv: [[i, 0, 21.5]] }));
        await client.publishAsync(`devices/${device.id}/up/telemetry`, payload, { qos: 1 });
        order.push(`puback ${i}`);
      }),
    );
    const error = "error BRIDGE_ERR_TELEMETRY_ALIASES_UNKNOWN";
    const errorsAt = order.flatMap((e, i) => (e === error ? [i] : []));
    assert.equal(errorsAt.length, frames, order.join(", "));
    for (let k = 0; k < frames; k++) {
      assert.ok(errorsAt[k] < order.indexOf(`puback ${k}`), `error ${k} before puback ${k}: ${order.join(", ")}`);
    }
  } finally {
    await client.endAsync();
  }
});
