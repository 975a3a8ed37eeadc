/**
 * The operator surface as the bridge wires it (createBridge): a real MQTT device's traffic shows up in /metrics and
 * the device list, and the WebSocket endpoint reaches the same agent.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import mqtt from "mqtt";
import WebSocket from "ws";
import type { Bridge } from "../../app/bridge.ts";
import { createLoopbackBridge } from "../support/in-process-bridge.ts";

const TOKEN = "bridge-surface-token-0123456789";

describe("operator surface wired into the bridge", () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "bridge-surface-"));
  let bridge: Bridge;
  let http: string;
  let device: mqtt.MqttClient;
  let secret = "";
  let mqttUrl = "";

  before(async () => {
    bridge = await createLoopbackBridge({ dataDir, apiToken: TOKEN });
    const addresses = await bridge.start();
    http = `127.0.0.1:${addresses.http?.port}`;
    const added = await bridge.registry.add("meter-1", { codec: "json" });
    if (added.status !== "created") throw new Error("provisioning failed");
    secret = added.secret;
    mqttUrl = `mqtt://127.0.0.1:${addresses.mqtt?.port}`;
    device = await mqtt.connectAsync(mqttUrl, {
      clientId: "meter-1",
      username: "meter-1",
      password: added.secret,
      reconnectPeriod: 0,
    });
    await device.publishAsync("devices/meter-1/up/hello", JSON.stringify({ fw: "3.1", codec: "json" }), { qos: 1 });
    await device.publishAsync("devices/meter-1/up/telemetry", JSON.stringify({ r: { kwh: 12.5 } }), { qos: 1 });
  });

  after(async () => {
    await device?.endAsync();
    await bridge?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const api = async (url: string) => {
    const res = await fetch(`http://${http}${url}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    return { status: res.status, text: await res.text() };
  };

  test("a device's messages and connection appear in /metrics", async () => {
    const { status, text } = await api("/metrics");
    assert.equal(status, 200);
    assert.match(text, /bridge_messages_in_total\{channel="telemetry",codec="json"\} [1-9]/);
    assert.match(text, /bridge_connections\{transport="tcp"\} 1/);
    assert.match(text, /bridge_commits_total [1-9]/);
    assert.match(text, /bridge_agents_active [1-9]/);
    assert.equal((await fetch(`http://${http}/metrics`)).status, 401);
  });

  test("the device list shows the device online with its last telemetry, without asking its agent", async () => {
    const body = JSON.parse((await api("/api/devices")).text) as {
      devices: Array<{ id: string; online: boolean; firmware: string; lastTelemetry: { readings: unknown } }>;
    };
    const row = body.devices.find((d) => d.id === "meter-1");
    assert.equal(row?.online, true);
    assert.deepEqual(row?.lastTelemetry.readings, { kwh: 12.5 });
  });

  test("a WebSocket client reaches the device's agent, and an unregistered id is refused", async () => {
    const ws = new WebSocket(`ws://${http}/agents/meter-1`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const messages: Array<Record<string, unknown>> = [];
    const rpc = new Promise<Record<string, unknown>>((resolve) => {
      ws.on("message", (data) => {
        const m = JSON.parse(String(data)) as Record<string, unknown>;
        messages.push(m);
        if (m.type === "rpc") resolve(m);
      });
    });
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    ws.send(JSON.stringify({ type: "rpc", id: "p", method: "getStatus", args: [] }));
    const reply = await rpc;
    assert.equal(reply.success, true);
    assert.equal((reply.result as { firmware: string }).firmware, "3.1");
    assert.equal(messages[0]?.type, "cf_agent_identity");
    ws.close();
    const status = await new Promise<number>((resolve) => {
      const stray = new WebSocket(`ws://${http}/agents/not-registered?token=${TOKEN}`);
      stray.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      stray.once("error", () => {});
    });
    assert.equal(status, 404);
  });

  test("an operator's WebSocket viewer does not make a device that never connected look seen", async () => {
    const added = await bridge.registry.add("quiet-1", { codec: "cbor" });
    assert.equal(added.status, "created");
    const ws = new WebSocket(`ws://${http}/agents/quiet-1?readonly=1`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const reply = new Promise<Record<string, unknown>>((resolve) => {
      ws.on("message", (data) => {
        const m = JSON.parse(String(data)) as Record<string, unknown>;
        if (m.type === "rpc") resolve(m);
      });
    });
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    ws.send(JSON.stringify({ type: "rpc", id: "s", method: "getStatus", args: [] }));
    assert.equal((await reply).success, true);
    const closed = new Promise((resolve) => ws.once("close", resolve));
    ws.close();
    await closed;
    const row = JSON.parse((await api("/api/devices/quiet-1")).text) as { lastSeenAt: number | null; online: boolean };
    assert.equal(row.online, false);
    assert.equal(row.lastSeenAt, null);
  });

  test("a path the router cannot read gets the API's JSON error shape with a stable code", async () => {
    for (const [url, status] of [
      ["/api/devices/%ZZ", 400],
      ["/api/devices/%ZZ/shadow", 400],
    ] as const) {
      const res = await api(url);
      assert.equal(res.status, status, url);
      const body = JSON.parse(res.text) as { error: { code: string; message: string; field: string } };
      assert.equal(body.error.code, "BRIDGE_ERR_API_VALIDATION", url);
      assert.equal(body.error.field, "url");
      assert.equal(typeof body.error.message, "string");
    }
  });

  test("deleting the device through the API ends its MQTT session and its secret stops working", async () => {
    const closed = new Promise<void>((resolve) => device.once("close", () => resolve()));
    const res = await fetch(`http://${http}/api/devices/meter-1`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { id: "meter-1", removed: { record: true, agentData: true } });
    await closed;
    assert.equal(bridge.broker.isOnline("meter-1"), false);
    assert.equal(bridge.registry.get("meter-1"), undefined);
    await assert.rejects(
      mqtt.connectAsync(mqttUrl, { clientId: "meter-1", username: "meter-1", password: secret, reconnectPeriod: 0 }),
    );
  });
});
