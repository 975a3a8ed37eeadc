/**
 * Rotating a device's secret through the API: by default an open session stays (a new secret may be delivered over
 * it); with `?endSessions=true` (a leaked secret) the sessions that logged in with the old one end at once, the old
 * secret is refused and the new one works.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import mqtt from "mqtt";
import { createLoopbackBridge } from "../support/in-process-bridge.ts";

const TOKEN = "secret-rotation-token-0123456789";
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "secret-rotation-"));
after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

test("POST /api/devices/:id/secret?endSessions=true ends the device's live session; only the new secret gets in", async () => {
  const bridge = await createLoopbackBridge({ dataDir, apiToken: TOKEN });
  const addresses = await bridge.start();
  const http = `http://127.0.0.1:${addresses.http?.port}`;
  const mqttUrl = `mqtt://127.0.0.1:${addresses.mqtt?.port}`;
  const connect = (password: string) =>
    mqtt.connectAsync(mqttUrl, { clientId: "leaky-1", username: "leaky-1", password, reconnectPeriod: 0 });
  const clients: mqtt.MqttClient[] = [];
  const rotate = async (id: string, query: string) => {
    const response = await fetch(`${http}/api/devices/${id}/secret${query}`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(response.status, 200);
    return (await response.json()) as { secret: string; endedSessions: number };
  };
  try {
    const added = await bridge.registry.add("leaky-1", { codec: "json" });
    if (added.status !== "created") throw new Error("provisioning failed");
    const old = await connect(added.secret);
    clients.push(old);
    const closed = new Promise<void>((resolve) => old.once("close", () => resolve()));
    const routine = await rotate("leaky-1", "");
    assert.equal(routine.endedSessions, 0);
    assert.equal(bridge.broker.isOnline("leaky-1"), true, "a routine rotation leaves the open session");
    const { secret, endedSessions } = await rotate("leaky-1", "?endSessions=true");
    assert.equal(endedSessions, 1);
    const gone = await Promise.race([
      closed.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000).unref()),
    ]);
    assert.ok(gone, "the session that logged in with the old secret was ended");
    assert.equal(bridge.broker.isOnline("leaky-1"), false, "the session of the old secret ended");
    await assert.rejects(connect(added.secret), /Not authorized|Bad username or password/i);
    const fresh = await connect(secret);
    clients.push(fresh);
    assert.equal(fresh.connected, true);
  } finally {
    for (const c of clients) await c.endAsync(true).catch(() => {});
    await bridge.stop();
  }
});

test("a CONNECT that verified the old secret before POST /api/devices/:id/secret?endSessions=true and ends after it is refused, so the leaked secret keeps no session", async () => {
  const bridge = await createLoopbackBridge({ dataDir, apiToken: TOKEN });
  const addresses = await bridge.start();
  const http = `http://127.0.0.1:${addresses.http?.port}`;
  const mqttUrl = `mqtt://127.0.0.1:${addresses.mqtt?.port}`;
  const registry = bridge.registry;
  const realVerify = registry.verify;
  const clients: mqtt.MqttClient[] = [];
  try {
    const added = await registry.add("leaky-2", { codec: "json" });
    if (added.status !== "created") throw new Error("provisioning failed");
    let rotation: { status: number; body: { endedSessions: number } } | undefined;
    // The old secret is verified; the operator's rotation (with its endSessions) runs to the end before the CONNECT
    // goes on, as when scrypt for the CONNECT is slower than the rotation's own.
    registry.verify = async (id, given) => {
      const verdict = await realVerify(id, given);
      const response = await fetch(`${http}/api/devices/${id}/secret?endSessions=true`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      rotation = { status: response.status, body: (await response.json()) as { endedSessions: number } };
      return verdict;
    };
    const attempt = await mqtt
      .connectAsync(mqttUrl, { clientId: "leaky-2", username: "leaky-2", password: added.secret, reconnectPeriod: 0 })
      .then(
        (client) => {
          clients.push(client);
          return "accepted";
        },
        (err: Error) => err.message,
      );
    assert.equal(rotation?.status, 200);
    assert.equal(rotation?.body.endedSessions, 0, "the CONNECT had no session when the rotation ended sessions");
    assert.match(attempt, /Bad username or password/i, "refused with CONNACK 4");
    assert.equal(bridge.broker.isOnline("leaky-2"), false, "the leaked secret keeps no session");
  } finally {
    registry.verify = realVerify;
    for (const c of clients) await c.endAsync(true).catch(() => {});
    await bridge.stop();
  }
});
