import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, describe, test } from "node:test";
import { addDevice, type BridgeProcess, makeTempDir, runCli, startBridgeProcess } from "./support/bridge-process.ts";
import { connectDevice, type TestDevice } from "./support/device.ts";

/** Short, so the test waits little; the default is 2000 ms (docs/configuration.md). */
const CHECK_MS = "200";
const env = { BRIDGE_MQTT_REGISTRY_CHECK_MS: CHECK_MS };

const dataDir = makeTempDir("bridge-devices-rm-");
let bridge: BridgeProcess;
const secrets = new Map<string, string>();
const open: TestDevice[] = [];

before(async () => {
  for (const id of ["doomed-1", "bystander-1"]) secrets.set(id, addDevice(dataDir, id, "cbor"));
  bridge = await startBridgeProcess({ dataDir, env });
});

after(async () => {
  for (const d of open) await d.end();
  if (bridge) await bridge.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function device(id: string): Promise<TestDevice> {
  const d = await connectDevice({ port: bridge.mqttPort, id, secret: secrets.get(id), codec: "cbor" });
  open.push(d);
  return d;
}

async function ping(d: TestDevice, id: string): Promise<void> {
  await d.send("rpc", { id, m: "ping", a: [] });
  assert.equal((await d.waitFor("rpc", (f) => f.id === id)).ok, true);
}

describe("agent-bridge devices rm while the bridge runs", () => {
  test("the removed device's live MQTT session ends, its reconnect is refused, and other devices carry on", async () => {
    const doomed = await device("doomed-1");
    const bystander = await device("bystander-1");
    await ping(doomed, "before");
    await ping(bystander, "before");
    const closed = new Promise<void>((resolve) => doomed.client.once("close", () => resolve()));

    const removed = runCli(["devices", "rm", "doomed-1", "--data-dir", dataDir], env);
    assert.equal(removed.status, 0, removed.stderr);
    assert.match(removed.stdout, /device doomed-1 removed: .*ends its live MQTT session within 200 ms/);

    // Within the check interval; the bound here is generous because a loaded machine delays timers.
    const deadline = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error("the removed device's session did not end")), 15_000).unref(),
    );
    await Promise.race([closed, deadline]);
    assert.ok(
      bridge.logs.some(
        (l) => l.device === "doomed-1" && /removed \(or removed and added again\) by another process/.test(l.msg),
      ),
      "the bridge says why it ended the session",
    );
    await assert.rejects(
      connectDevice({ port: bridge.mqttPort, id: "doomed-1", secret: secrets.get("doomed-1"), codec: "cbor" }),
    );
    await ping(bystander, "after");
  });
});
