/**
 * A device removed through the API while offline leaves nothing of its persistent MQTT session (clean: false) behind
 * in the broker: a device provisioned again under the id and connecting with clean: false gets sessionPresent 0, and
 * no subscription of the removed device delivers the new agent's frames to it. Through the HTTP API, with mqtt.js.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import mqtt from "mqtt";
import { apiCaller } from "../support/api-caller.ts";
import { createLoopbackBridge } from "../support/in-process-bridge.ts";

const TOKEN = "removed-session-token-0123456789";
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "removed-session-"));
after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

const api = apiCaller(TOKEN);

async function provision(http: string, id: string): Promise<string> {
  const res = await api(http, "POST", "/api/devices", { id, codec: "json" });
  assert.equal(res.status, 201);
  return ((await res.json()) as { secret: string }).secret;
}

/** Connects with a persistent session; resolves with the client, its CONNACK's sessionPresent and what it receives. */
function connect(
  url: string,
  id: string,
  secret: string,
): Promise<{ client: mqtt.MqttClient; sessionPresent: boolean; received: string[] }> {
  const client = mqtt.connect(url, {
    clientId: id,
    username: id,
    password: secret,
    clean: false,
    reconnectPeriod: 0,
    protocolVersion: 4,
  });
  const received: string[] = [];
  client.on("message", (topic) => received.push(topic));
  return new Promise((resolve, reject) => {
    client.once("connect", (connack) => resolve({ client, sessionPresent: connack.sessionPresent, received }));
    client.once("error", reject);
  });
}

test("a device removed through the API while offline: the next one under its id starts a clean session", async () => {
  const bridge = await createLoopbackBridge({ dataDir, apiToken: TOKEN });
  const addresses = await bridge.start();
  const http = `http://127.0.0.1:${addresses.http?.port}`;
  const url = `mqtt://127.0.0.1:${addresses.mqtt?.port}`;
  const clients: mqtt.MqttClient[] = [];
  try {
    const id = "door-1";
    const old = await connect(url, id, await provision(http, id));
    clients.push(old.client);
    await old.client.subscribeAsync(`devices/${id}/down/#`, { qos: 1 });
    await old.client.endAsync();
    for (let i = 0; i < 250 && bridge.broker.isOnline(id); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(bridge.broker.isOnline(id), false);

    assert.equal((await api(http, "DELETE", `/api/devices/${id}`)).status, 200);
    const fresh = await connect(url, id, await provision(http, id));
    clients.push(fresh.client);
    assert.equal(fresh.sessionPresent, false, "nothing of the removed device's session");
    // The new agent's frames (its identity, a command) reach the device only once it subscribes itself.
    assert.equal((await api(http, "POST", `/api/devices/${id}/commands`, { name: "open" })).status, 201);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(fresh.received, [], "no subscription of the removed device delivers");
  } finally {
    for (const c of clients) await c.endAsync(true).catch(() => {});
    await bridge.stop();
  }
});
