/**
 * A device removed while offline leaves nothing of its persistent MQTT session (clean: false) behind in the broker: a
 * device provisioned again under the id and connecting with clean: false gets sessionPresent 0, no subscription of the
 * removed device delivers the new agent's frames to it, and no frame the removed device left unacknowledged reaches
 * it. Whether the removal came through the HTTP API or from another process writing the registry, as
 * `agent-bridge devices rm` does (then the registry watch drops the session, or the new device's CONNECT does when it
 * comes before the watch looked). A real bridge, with mqtt.js.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import mqtt from "mqtt";
import { REGISTRY_FILE } from "../../app/bridge/layout.ts";
import type { Bridge } from "../../app/bridge.ts";
import { createDeviceRegistry } from "../../broker/registry/index.ts";
import { apiCaller } from "../support/api-caller.ts";
import { capturingLogger } from "../support/capturing-logger.ts";
import { createLoopbackBridge, type LoopbackBridgeOptions } from "../support/in-process-bridge.ts";

const TOKEN = "removed-session-token-0123456789";
const dataDirs: string[] = [];
after(() => {
  for (const dir of dataDirs) fs.rmSync(dir, { recursive: true, force: true });
});

const api = apiCaller(TOKEN);
const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 250 && !done(); i++) await pause(20);
  assert.ok(done(), what);
}

async function provision(http: string, id: string): Promise<string> {
  const res = await api(http, "POST", "/api/devices", { id, codec: "json" });
  assert.equal(res.status, 201);
  return ((await res.json()) as { secret: string }).secret;
}

/**
 * Connects with a persistent session; resolves with the client, its CONNACK's sessionPresent and the topics it
 * receives. With `ack: false` it never acknowledges a QoS 1 frame, which the broker then keeps for its next session.
 */
function connect(
  url: string,
  id: string,
  secret: string,
  { ack = true }: { ack?: boolean } = {},
): Promise<{ client: mqtt.MqttClient; sessionPresent: boolean; received: string[] }> {
  const client = mqtt.connect(url, {
    clientId: id,
    username: id,
    password: secret,
    clean: false,
    reconnectPeriod: 0,
    protocolVersion: 4,
  });
  // mqtt.js sends a QoS 1 frame's PUBACK once this calls back, and reads no further packet before it does.
  if (!ack) {
    client.handleMessage = (packet, callback) => {
      if (packet.qos !== 1) callback();
    };
  }
  const received: string[] = [];
  client.on("message", (topic) => received.push(topic));
  return new Promise((resolve, reject) => {
    client.once("connect", (connack) => resolve({ client, sessionPresent: connack.sessionPresent, received }));
    client.once("error", reject);
  });
}

/** A started bridge on a data directory of its own, with its HTTP and MQTT addresses. */
async function startBridge(
  options: Omit<LoopbackBridgeOptions, "dataDir" | "apiToken"> = {},
): Promise<{ bridge: Bridge; dataDir: string; http: string; url: string }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "removed-session-"));
  dataDirs.push(dataDir);
  const bridge = await createLoopbackBridge({ dataDir, apiToken: TOKEN, ...options });
  const addresses = await bridge.start();
  return {
    bridge,
    dataDir,
    http: `http://127.0.0.1:${addresses.http?.port}`,
    url: `mqtt://127.0.0.1:${addresses.mqtt?.port}`,
  };
}

/**
 * Leaves a persistent session of `id` in the broker holding a command frame: the device subscribes at QoS 1, gets a
 * command it never acknowledges, and goes offline.
 */
async function leaveStoredCommand(bridge: Bridge, http: string, url: string, id: string): Promise<string> {
  const secret = await provision(http, id);
  await leaveStoredCommandOf(bridge, http, url, id, secret);
  return secret;
}

/** {@link leaveStoredCommand} for a device already provisioned with `secret`. */
async function leaveStoredCommandOf(bridge: Bridge, http: string, url: string, id: string, secret: string) {
  const old = await connect(url, id, secret, { ack: false });
  try {
    await old.client.subscribeAsync(`devices/${id}/down/#`, { qos: 1 });
    assert.equal((await api(http, "POST", `/api/devices/${id}/commands`, { name: "open" })).status, 201);
    await until(() => old.received.includes(`devices/${id}/down/cmd`), "the command reached the device");
  } finally {
    await old.client.endAsync(true);
  }
  await until(() => !bridge.broker.isOnline(id), "the device went offline");
}

/** Another process's connection to the bridge's registry file, as `agent-bridge devices` opens it. */
function otherProcessRegistry(dataDir: string) {
  return createDeviceRegistry({ path: path.join(dataDir, REGISTRY_FILE), scrypt: { N: 1024, r: 8, p: 1 } });
}

/** Connects a new device under `id`: it must start clean, and get nothing of the removed one. */
async function assertStartsClean(url: string, id: string, secret: string): Promise<void> {
  const fresh = await connect(url, id, secret);
  try {
    assert.equal(fresh.sessionPresent, false, "nothing of the removed device's session");
    await pause(300);
    assert.deepEqual(fresh.received, [], "no frame the removed device left, no subscription of it delivering");
  } finally {
    await fresh.client.endAsync(true);
  }
}

test("the stored command is resumed when the device is not removed (what the tests below remove)", async () => {
  const { bridge, http, url } = await startBridge();
  try {
    const id = "door-kept";
    const secret = await leaveStoredCommand(bridge, http, url, id);
    const back = await connect(url, id, secret);
    try {
      assert.equal(back.sessionPresent, true);
      await until(() => back.received.includes(`devices/${id}/down/cmd`), "the stored command arrives again");
    } finally {
      await back.client.endAsync(true);
    }
  } finally {
    await bridge.stop();
  }
});

test("a device removed through the API while offline: the next one under its id starts a clean session", async () => {
  const { bridge, http, url } = await startBridge();
  const clients: mqtt.MqttClient[] = [];
  try {
    const id = "door-1";
    const old = await connect(url, id, await provision(http, id));
    clients.push(old.client);
    await old.client.subscribeAsync(`devices/${id}/down/#`, { qos: 1 });
    await old.client.endAsync();
    await until(() => !bridge.broker.isOnline(id), "the device went offline");

    assert.equal((await api(http, "DELETE", `/api/devices/${id}`)).status, 200);
    const fresh = await connect(url, id, await provision(http, id));
    clients.push(fresh.client);
    assert.equal(fresh.sessionPresent, false, "nothing of the removed device's session");
    // The new agent's frames (its identity, a command) reach the device only once it subscribes itself.
    assert.equal((await api(http, "POST", `/api/devices/${id}/commands`, { name: "open" })).status, 201);
    await pause(300);
    assert.deepEqual(fresh.received, [], "no subscription of the removed device delivers");
  } finally {
    for (const c of clients) await c.endAsync(true).catch(() => {});
    await bridge.stop();
  }
});

test("a device removed by another process while offline: the registry watch drops its session", async () => {
  const dropped = "its kept session is dropped";
  const { logger, lines } = capturingLogger<{ msg: string; device?: string }>("info");
  const { bridge, dataDir, http, url } = await startBridge({ registryCheckMs: 20, logger });
  const cli = otherProcessRegistry(dataDir);
  try {
    const id = "door-2";
    await leaveStoredCommand(bridge, http, url, id);
    assert.equal(cli.remove(id), true);
    await until(
      () => lines.some((l) => l.msg.includes(dropped) && l.device === id),
      "the watch dropped the removed device's session",
    );
    // Provisioned again afterwards, as `agent-bridge devices add` does.
    const added = await cli.add(id, { codec: "json" });
    assert.equal(added.status, "created");
    await assertStartsClean(url, id, added.status === "created" ? added.secret : "");
  } finally {
    cli.close();
    await bridge.stop();
  }
});

test("a device removed and added again by another process before the watch looked: its CONNECT drops the old session", async () => {
  // The watch never looks: only the new device's CONNECT can tell the session belongs to the removed record. A window
  // of one unacknowledged frame: the removed device's stored command must not take it from the new device.
  const { bridge, dataDir, http, url } = await startBridge({ registryCheckMs: 0, maxUnackedDownPerDevice: 1 });
  const cli = otherProcessRegistry(dataDir);
  try {
    const id = "door-3";
    await leaveStoredCommand(bridge, http, url, id);
    assert.equal(cli.remove(id), true);
    const added = await cli.add(id, { codec: "json" });
    assert.equal(added.status, "created");
    const secret = added.status === "created" ? added.secret : "";
    await assertStartsClean(url, id, secret);
    // The dropped frame is not counted against the window of the session that dropped it: its own command reaches it.
    // (Removed and added again once more, so that this session is the one whose CONNECT drops the stored frame.)
    await leaveStoredCommandOf(bridge, http, url, id, secret);
    assert.equal(cli.remove(id), true);
    const again = await cli.add(id, { codec: "json" });
    assert.equal(again.status, "created");
    const fresh = await connect(url, id, again.status === "created" ? again.secret : "");
    try {
      assert.equal(fresh.sessionPresent, false);
      await fresh.client.subscribeAsync(`devices/${id}/down/#`, { qos: 1 });
      assert.equal((await api(http, "POST", `/api/devices/${id}/commands`, { name: "close" })).status, 201);
      await until(() => fresh.received.includes(`devices/${id}/down/cmd`), "the new device's command reached it");
    } finally {
      await fresh.client.endAsync(true);
    }
  } finally {
    cli.close();
    await bridge.stop();
  }
});
