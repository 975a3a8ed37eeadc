/**
 * A session the operator ends is closed with a reason that says why, for the agent (`onClose(conn, reason)`, seen in
 * the device's `lastClose`), the broker's counters and the metrics: `revoked` when a secret rotation ends it
 * (`?endSessions=true`), `removed` when the device is removed (`DELETE /api/devices/:id`, or another process removing
 * its record), never the `error` of a session that failed. Driven through the HTTP API with a real MQTT client.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import mqtt from "mqtt";
import type { Bridge } from "../../app/bridge.ts";
import { createDeviceRegistry } from "../../broker/registry/index.ts";
import { apiCaller } from "../support/api-caller.ts";
import { createLoopbackBridge } from "../support/in-process-bridge.ts";

const TOKEN = "close-reason-token-0123456789";
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "close-reason-"));
after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

const api = apiCaller(TOKEN);

/** Resolves once the client's connection has closed; fails the test after 5 s. */
function closeOf(client: mqtt.MqttClient): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the session was not ended")), 5000);
    client.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Waits until the broker has finished closing the device's session (the agent's onClose has committed). */
async function closedInBroker(bridge: Bridge, reason: string, count: number): Promise<void> {
  for (let i = 0; i < 250 && (bridge.broker.stats().connectionsClosed[reason as "error"] ?? 0) < count; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The value of `bridge_connections_closed_total` for `reason` over MQTT on TCP, 0 when absent. */
async function closedMetric(http: string, reason: string): Promise<number> {
  const text = await (await api(http, "GET", "/metrics")).text();
  const line = text
    .split("\n")
    .find((l) => l.startsWith(`bridge_connections_closed_total{transport="tcp",reason="${reason}"}`));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

test("sessions ended by a secret rotation or a removal close as revoked and removed, not error", async () => {
  const bridge = await createLoopbackBridge({ dataDir, apiToken: TOKEN });
  const addresses = await bridge.start();
  const http = `http://127.0.0.1:${addresses.http?.port}`;
  const mqttUrl = `mqtt://127.0.0.1:${addresses.mqtt?.port}`;
  const clients: mqtt.MqttClient[] = [];
  const connect = async (id: string, password: string) => {
    const client = await mqtt.connectAsync(mqttUrl, { clientId: id, username: id, password, reconnectPeriod: 0 });
    clients.push(client);
    return client;
  };
  try {
    const provisioned = await api(http, "POST", "/api/devices", { id: "door-1", codec: "json" });
    assert.equal(provisioned.status, 201);
    const { secret } = (await provisioned.json()) as { secret: string };

    // A leaked secret: the rotation ends the session that logged in with it.
    const leaked = await connect("door-1", secret);
    const revoked = closeOf(leaked);
    const rotation = await api(http, "POST", "/api/devices/door-1/secret?endSessions=true");
    assert.equal(rotation.status, 200);
    const { secret: fresh, endedSessions } = (await rotation.json()) as { secret: string; endedSessions: number };
    assert.equal(endedSessions, 1);
    await revoked;
    await closedInBroker(bridge, "revoked", 1);
    const device = (await (await api(http, "GET", "/api/devices/door-1")).json()) as { status: { lastClose: string } };
    assert.equal(device.status.lastClose, "revoked", "the agent's onClose was told why");
    assert.equal(await closedMetric(http, "revoked"), 1);

    // The device removed through the API: its session ends as removed.
    const current = await connect("door-1", fresh);
    const removed = closeOf(current);
    const deletion = await api(http, "DELETE", "/api/devices/door-1");
    assert.equal(deletion.status, 200);
    await removed;
    await closedInBroker(bridge, "removed", 1);
    assert.equal(await closedMetric(http, "removed"), 1);

    // Another process (`agent-bridge devices rm`) removes the record: the registry watch ends the session as removed,
    // and the agent, which stays, is told so.
    const again = await api(http, "POST", "/api/devices", { id: "door-2", codec: "json" });
    const { secret: second } = (await again.json()) as { secret: string };
    const watched = await connect("door-2", second);
    const ended = closeOf(watched);
    const other = createDeviceRegistry({ path: path.join(dataDir, "registry.db") });
    try {
      assert.equal(other.remove("door-2"), true);
    } finally {
      other.close();
    }
    await ended;
    await closedInBroker(bridge, "removed", 2);
    const status = await bridge.runtime.call("door-2", "getStatus", []);
    assert.equal(status.ok && (status.value as { lastClose: string }).lastClose, "removed");
    assert.equal(await closedMetric(http, "removed"), 2);

    assert.deepEqual(bridge.broker.stats().connectionsClosed, { revoked: 1, removed: 2 });
    assert.equal(await closedMetric(http, "error"), 0, "no operator action counts as a failed session");
  } finally {
    for (const c of clients) await c.endAsync(true).catch(() => {});
    await bridge.stop();
  }
});
