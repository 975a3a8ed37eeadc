/**
 * Devices stored with an agent class the bridge does not serve (a class removed from the config or the code). The
 * bridge served them with the fallback class and logged one warning per device at start, and nothing listed them: an
 * operator who removed a class could not find the devices it affected. The device resource now names the class that
 * serves them instead (`agentClassFallback`), the list filters on it, the start warning counts them and says how to
 * list them, and a gauge counts them.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { type Bridge, createBridge } from "../../app/bridge.ts";
import { REGISTRY_FILE } from "../../app/bridge/layout.ts";
import { createDeviceRegistry } from "../../broker/registry/index.ts";
import { capturingLogger } from "../support/capturing-logger.ts";
import { loopbackConfig } from "../support/in-process-bridge.ts";
import { makeTempDir } from "./support/bridge-process.ts";

const TOKEN = "class-fallback-token-0123456789ab";
const dataDir = makeTempDir("api-class-fallback-");
const { logger, lines: logs } = capturingLogger("warn");
let bridge: Bridge;
let base: string;

interface DeviceRow {
  id: string;
  agentClass: string | null;
  agentClassFallback: string | null;
}

before(async () => {
  // Stored as another process (or an older bridge) left them: the registry takes any class name.
  fs.mkdirSync(dataDir, { recursive: true });
  const registry = createDeviceRegistry({ path: path.join(dataDir, REGISTRY_FILE), scrypt: { N: 1024, r: 8, p: 1 } });
  await registry.add("gone-1", { agentClass: "Thermostat" });
  await registry.add("gone-2", { agentClass: "Humidistat" });
  await registry.add("kept-1", { agentClass: "DeviceAgent" });
  await registry.add("plain-1");
  registry.close();
  bridge = await createBridge(loopbackConfig({ dataDir, apiToken: TOKEN }), { logger });
  const { http } = await bridge.start();
  base = `http://127.0.0.1:${http?.port}`;
});
after(async () => {
  await bridge.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function get(pathAndQuery: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${base}${pathAndQuery}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

function classes(devices: unknown): Array<[string, string | null, string | null]> {
  return (devices as DeviceRow[]).map((d) => [d.id, d.agentClass, d.agentClassFallback]);
}

function fallbackGauge(text: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith("bridge_devices_agent_class_fallback "));
  return line === undefined ? undefined : Number(line.split(" ")[1]);
}

describe("devices whose agent class the bridge does not serve", () => {
  test("the start warns once, counting them and saying how to list them", () => {
    const warnings = logs.filter((l) => l.agentClasses !== undefined);
    assert.equal(warnings.length, 1, JSON.stringify(logs));
    const [warning] = warnings;
    assert.equal(warning?.devices, 2);
    assert.deepEqual(warning?.agentClasses, ["Humidistat", "Thermostat"]);
    assert.match(String(warning?.msg), /^2 devices ask for an agent class this bridge does not serve/);
    assert.match(String(warning?.msg), /GET \/api\/devices\?agentClassFallback=true/);
    assert.match(String(warning?.msg), /agent-bridge devices list --agent-class-fallback/);
  });

  test("the device list names the class that serves each of them instead, null for the others", async () => {
    const { status, body } = await get("/api/devices");
    assert.equal(status, 200);
    assert.deepEqual(classes(body.devices), [
      ["gone-1", "Thermostat", "DeviceAgent"],
      ["gone-2", "Humidistat", "DeviceAgent"],
      ["kept-1", "DeviceAgent", null],
      ["plain-1", null, null],
    ]);
  });

  test("agentClassFallback=true lists only them and false only the others, counted in matched", async () => {
    const only = await get("/api/devices?agentClassFallback=true");
    assert.deepEqual(classes(only.body.devices), [
      ["gone-1", "Thermostat", "DeviceAgent"],
      ["gone-2", "Humidistat", "DeviceAgent"],
    ]);
    assert.equal(only.body.matched, 2);
    const paged = await get("/api/devices?agentClassFallback=true&limit=1&offset=1");
    assert.deepEqual(classes(paged.body.devices), [["gone-2", "Humidistat", "DeviceAgent"]]);
    assert.equal(paged.body.matched, 2);
    const others = await get("/api/devices?agentClassFallback=false");
    assert.deepEqual(
      (others.body.devices as DeviceRow[]).map((d) => d.id),
      ["kept-1", "plain-1"],
    );
  });

  test("a filter value other than true or false is a 400 naming it", async () => {
    const { status, body } = await get("/api/devices?agentClassFallback=maybe");
    assert.equal(status, 400);
    assert.match(JSON.stringify(body), /agentClassFallback/);
  });

  test("one device shows the same field", async () => {
    const gone = await get("/api/devices/gone-1");
    assert.equal(gone.status, 200);
    assert.equal(gone.body.agentClass, "Thermostat");
    assert.equal(gone.body.agentClassFallback, "DeviceAgent");
    assert.equal((await get("/api/devices/kept-1")).body.agentClassFallback, null);
  });

  test("a gauge counts them, and a removed one leaves the count", async () => {
    assert.equal(fallbackGauge(await bridge.metrics.scrape()), 2);
    const removed = await fetch(`${base}/api/devices/gone-2`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(removed.status, 200);
    assert.equal(fallbackGauge(await bridge.metrics.scrape()), 1);
  });
});
