import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import WebSocket from "ws";
import {
  addDevice,
  type BridgeProcess,
  makeTempDir,
  ROOT,
  runCli,
  startBridgeProcess,
  TEST_API_TOKEN,
} from "./support/bridge-process.ts";
import { connectDevice, type TestDevice } from "./support/device.ts";

const dataDir = makeTempDir("bridge-classes-");
const configFile = path.join(dataDir, "bridge.json");
let bridge: BridgeProcess;
const secrets = new Map<string, string>();
const open: TestDevice[] = [];

before(async () => {
  fs.writeFileSync(
    path.join(dataDir, "thermostat.mts"),
    [
      `import { DeviceAgent } from ${JSON.stringify(path.join(ROOT, "agents/device/index.ts"))};`,
      "export class Thermostat extends DeviceAgent {",
      '  static override callable = [...DeviceAgent.callable, "whoami"];',
      '  whoami() { return { cls: "Thermostat", id: this.id }; }',
      "}",
    ].join("\n"),
  );
  fs.writeFileSync(
    configFile,
    JSON.stringify({
      agents: { classes: [{ pattern: "thermo-*", module: "./thermostat.mts", export: "Thermostat" }] },
    }),
  );
  secrets.set("thermo-1", addDevice(dataDir, "thermo-1", "cbor"));
  secrets.set("plain-1", addDevice(dataDir, "plain-1", "cbor"));
  const special = runCli([
    "devices",
    "add",
    "special-1",
    "--agent-class",
    "Thermostat",
    "--json",
    "--data-dir",
    dataDir,
    // The config the bridge runs with: --agent-class takes only a class the bridge has.
    "--config",
    configFile,
  ]);
  assert.equal(special.status, 0, special.stderr);
  secrets.set("special-1", (JSON.parse(special.stdout) as { secret: string }).secret);
  bridge = await startBridgeProcess({ dataDir, args: ["--config", configFile] });
});

after(async () => {
  for (const d of open) await d.end();
  await bridge?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function whoami(id: string, url?: string): Promise<{ ok: boolean; res?: unknown }> {
  const d = await connectDevice({ port: bridge.mqttPort, url, id, secret: secrets.get(id), codec: "cbor" });
  open.push(d);
  await d.send("rpc", { id: "who", m: "whoami", a: [] });
  const result = await d.waitFor("rpc", (f) => f.id === "who");
  assert.deepEqual(d.violations, []);
  await d.end();
  return result;
}

describe("agent classes and WebSocket transports end to end", () => {
  test("a device matching a configured pattern is served by that class; others by DeviceAgent", async () => {
    assert.deepEqual((await whoami("thermo-1")).res, { cls: "Thermostat", id: "thermo-1" });
    assert.equal((await whoami("plain-1")).ok, false, "DeviceAgent has no whoami");
  });

  test("a device provisioned with --agent-class is served by that class", async () => {
    assert.deepEqual((await whoami("special-1")).res, { cls: "Thermostat", id: "special-1" });
  });

  test("MQTT over WebSocket at /mqtt on the HTTP port reaches the same agents", async () => {
    const result = await whoami("thermo-1", `ws://127.0.0.1:${bridge.httpPort}/mqtt`);
    assert.deepEqual(result.res, { cls: "Thermostat", id: "thermo-1" });
  });

  test("the agent socket /agents/{id} with the operator token speaks the JSON protocol", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${bridge.httpPort}/agents/thermo-1`, {
      headers: { authorization: `Bearer ${TEST_API_TOKEN}` },
    });
    try {
      const messages: Array<{ type: string; [key: string]: unknown }> = [];
      const identity = new Promise<{ agent: string; name: string }>((resolve, reject) => {
        ws.on("message", (data) => {
          const message = JSON.parse(String(data)) as { type: string; agent: string; name: string };
          messages.push(message);
          if (message.type === "cf_agent_identity") resolve(message);
        });
        ws.on("error", reject);
      });
      const id = await identity;
      assert.equal(id.agent, "thermo-1");
      assert.equal(id.name, "Thermostat");
    } finally {
      ws.close();
    }
  });

  test("a configured class module that does not exist stops start with the line devices prints, exit 1", () => {
    // Its own data directory: the suite's bridge still holds the lock on the shared one (one bridge per directory).
    const ownDir = makeTempDir("bridge-classes-bad-");
    const badConfig = path.join(ownDir, "bad.json");
    fs.writeFileSync(
      badConfig,
      JSON.stringify({ agents: { classes: [{ pattern: "x-*", module: "./missing.ts", export: "X" }] } }),
    );
    const dirs = ["--config", badConfig, "--data-dir", ownDir];
    const started = runCli(["start", ...dirs, "--mqtt-port", "0", "--http-port", "0"]);
    const added = runCli(["devices", "add", "x-1", "--agent-class", "X", ...dirs]);
    fs.rmSync(ownDir, { recursive: true, force: true });
    // The operator's setting to fix, not a fault: one line naming the entry on stderr, no fatal log line or stack.
    assert.equal(started.status, 1, `${started.stderr}\n${started.stdout}`);
    assert.match(started.stderr, /^error: agents\.classes\[0\]\.module .*missing\.ts cannot be loaded\n$/);
    assert.doesNotMatch(started.stdout, /"level":60/);
    assert.equal(started.stderr, added.stderr, "start and devices say it alike");
    assert.equal(added.status, started.status);
  });
});
