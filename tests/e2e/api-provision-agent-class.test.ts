/**
 * `POST /api/devices {agentClass}` on a running bridge: the name must be one of the bridge's agent classes (DeviceAgent,
 * or a configured class by export or class name). An unknown name was stored as given and answered 201, and the device
 * was then served by DeviceAgent with a warning in the log at every start: a typo was accepted and ignored.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, describe, test } from "node:test";
import type { Bridge } from "../../app/bridge.ts";
import { createLoopbackBridge } from "../support/in-process-bridge.ts";
import { makeTempDir } from "./support/bridge-process.ts";

const TOKEN = "provision-class-token-0123456789";
const dataDir = makeTempDir("api-provision-class-");
let bridge: Bridge;
let base: string;

before(async () => {
  bridge = await createLoopbackBridge({ dataDir, apiToken: TOKEN });
  const { http } = await bridge.start();
  base = `http://127.0.0.1:${http?.port}`;
});
after(async () => {
  await bridge.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

function provision(body: Record<string, unknown>): Promise<Response> {
  return fetch(`${base}/api/devices`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

describe("provisioning with an agent class through the API", () => {
  test("an agent class the bridge does not have is a 400 naming the ones it has, and nothing is provisioned", async () => {
    const response = await provision({ id: "class-typo", agentClass: "DeviceAgnet" });
    assert.equal(response.status, 400);
    assert.deepEqual(await response.json(), {
      error: {
        code: "BRIDGE_ERR_API_VALIDATION",
        message: "body.agentClass DeviceAgnet is not an agent class of this bridge (DeviceAgent)",
        field: "body.agentClass",
      },
    });
    assert.equal(bridge.registry.get("class-typo"), undefined);
  });

  test("an agent class the bridge has is provisioned with the device", async () => {
    const response = await provision({ id: "class-known", agentClass: "DeviceAgent" });
    assert.equal(response.status, 201);
    assert.equal(bridge.registry.get("class-known")?.agentClass, "DeviceAgent");
  });
});
