/**
 * The audit's repro through the real bridge process: a device provisioned as CBOR, no hello, publishes one message
 * on `.../up/telemetry/json`; the command an operator then posts and the reply to its rpc arrive in CBOR, never as
 * JSON text (a topic suffix names the codec of its own message only).
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, describe, test } from "node:test";
import { addDevice, type BridgeProcess, makeTempDir, startBridgeProcess } from "./support/bridge-process.ts";
import { connectDevice, type TestDevice } from "./support/device.ts";

const dataDir = makeTempDir("bridge-json-suffix-");
let bridge: BridgeProcess | undefined;
let device: TestDevice | undefined;
let secret = "";

before(async () => {
  secret = addDevice(dataDir, "dev-3", "cbor");
  bridge = await startBridgeProcess({ dataDir });
});

after(async () => {
  await device?.end();
  await bridge?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe("a strict CBOR device that publishes one /json message", () => {
  test("receives the operator's command and its rpc reply in CBOR", async () => {
    assert.ok(bridge);
    device = await connectDevice({ port: bridge.mqttPort, id: "dev-3", secret, codec: "cbor", strict: true });
    await device.publishRaw("devices/dev-3/up/telemetry/json", JSON.stringify({ r: { temp: 20.5 } }));
    const posted = await bridge.api("POST", "/api/devices/dev-3/commands", { name: "blink", args: { times: 2 } });
    assert.ok(posted.status >= 200 && posted.status < 300, JSON.stringify(posted.body));
    const cmd = await device.waitFor("cmd", (f) => f.n === "blink");
    assert.deepEqual(cmd.a, { times: 2 });
    await device.send("rpc", { id: "r1", m: "ping" });
    const rpc = await device.waitFor("rpc", (f) => f.id === "r1");
    assert.equal(rpc.ok, true);
    assert.deepEqual(device.violations, [], "every frame the device got was CBOR");
    const rows = await bridge.api("GET", "/api/devices/dev-3/telemetry");
    assert.match(JSON.stringify(rows.body), /temp/, "the /json message itself was stored");
  });
});
