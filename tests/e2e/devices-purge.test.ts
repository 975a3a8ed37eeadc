import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { addDevice, type BridgeProcess, makeTempDir, runCli, startBridgeProcess } from "./support/bridge-process.ts";
import { connectDevice } from "./support/device.ts";

/** Short, so the test waits little for the bridge to notice `devices rm`; the default is 2000 ms. */
const env = { BRIDGE_MQTT_REGISTRY_CHECK_MS: "200" };

const dataDir = makeTempDir("bridge-devices-purge-");
let bridge: BridgeProcess | undefined;

after(async () => {
  await bridge?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

/** Where the bridge keeps the agent's database (docs/configuration.md, the data directory). */
function agentFile(id: string): string {
  return path.join(dataDir, "agents", "agents", `${id}.db`);
}

/** Connects the device, gives its agent something to keep (a desired state) and disconnects it. */
async function useDevice(running: BridgeProcess, id: string, secret: string): Promise<void> {
  const device = await connectDevice({ port: running.mqttPort, id, secret, codec: "cbor" });
  try {
    await device.send("rpc", { id: "p", m: "ping", a: [] });
    assert.equal((await device.waitFor("rpc", (f) => f.id === "p")).ok, true);
    const put = await running.api("PUT", `/api/devices/${id}/shadow/desired`, { state: { target: 21 } });
    assert.equal(put.status, 200, JSON.stringify(put.body));
  } finally {
    await device.end();
  }
}

function rm(...args: string[]) {
  return runCli(["devices", "rm", ...args, "--data-dir", dataDir], env);
}

describe("removing a device: the CLI and the API tell the same story", () => {
  test("after devices rm, the agent data it keeps is removed by the API while the bridge runs, not by --purge", async () => {
    const secret = addDevice(dataDir, "kept-1", "cbor");
    bridge = await startBridgeProcess({ dataDir, env });
    await useDevice(bridge, "kept-1", secret);
    assert.equal(fs.existsSync(agentFile("kept-1")), true);

    const removed = rm("kept-1");
    assert.equal(removed.status, 0, removed.stderr);
    assert.match(removed.stdout, /its agent data stays \(remove it with `devices rm kept-1 --purge` while no bridge/);
    const again = rm("kept-1");
    assert.equal(again.status, 1);
    assert.match(again.stderr, /no device kept-1; its agent data is still there: `devices rm kept-1 --purge`/);

    // A running bridge holds the agents' data: --purge removes nothing and points at the API.
    const refused = rm("kept-1", "--purge");
    assert.equal(refused.status, 1);
    assert.match(
      refused.stderr,
      /in use by pid \d+ on host .*container\): nothing removed.*DELETE \/api\/devices\/kept-1/,
    );
    assert.equal(fs.existsSync(agentFile("kept-1")), true);

    const deleted = await bridge.api("DELETE", "/api/devices/kept-1");
    assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
    assert.deepEqual(deleted.body, { id: "kept-1", removed: { record: false, agentData: true } });
    assert.equal(fs.existsSync(agentFile("kept-1")), false);
    assert.equal((await bridge.api("DELETE", "/api/devices/kept-1")).status, 404);
  });

  test("with no bridge running, devices rm --purge removes the record and the agent data, as the API's DELETE", async () => {
    assert.ok(bridge, "the bridge of the test before");
    const secret = addDevice(dataDir, "gone-1", "cbor");
    await useDevice(bridge, "gone-1", secret);
    await bridge.stop();
    bridge = undefined;

    const purged = rm("gone-1", "--purge", "--json");
    assert.equal(purged.status, 0, purged.stderr);
    assert.deepEqual(JSON.parse(purged.stdout), { id: "gone-1", removed: { record: true, agentData: true } });
    assert.equal(fs.existsSync(agentFile("gone-1")), false);
    assert.equal(fs.existsSync(path.join(dataDir, "bridge.lock")), false, "the lock is given back");
    const nothing = rm("gone-1", "--purge");
    assert.equal(nothing.status, 1);
    assert.match(nothing.stderr, /no device gone-1 \(no registry record and no agent data\)/);

    // The bridge starts on the purged directory, and the id provisioned again starts from nothing.
    const fresh = addDevice(dataDir, "gone-1", "cbor");
    bridge = await startBridgeProcess({ dataDir, env });
    const device = await connectDevice({ port: bridge.mqttPort, id: "gone-1", secret: fresh, codec: "cbor" });
    await device.end();
    const shadow = await bridge.api("GET", "/api/devices/gone-1/shadow");
    assert.equal(shadow.status, 200);
    assert.deepEqual((shadow.body as { desired: { version: number; state: unknown } }).desired, {
      version: 0,
      state: {},
    });
  });
});
