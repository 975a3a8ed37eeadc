/**
 * `agent-bridge devices add --agent-class NAME`, one id or `--count`: the name must be one of the bridge's agent classes,
 * the list `POST /api/devices` checks against (DeviceAgent, and each class of the config's `agents.classes` by export
 * and class name). An unknown name was stored as given; the bridge then served the device with the default class (or
 * the class of a pattern its id matches) and logged a warning at every start: a typo was accepted and ignored.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { addDevice, makeTempDir, ROOT, runCli } from "./support/bridge-process.ts";

const dir = makeTempDir("bridge-devices-cli-class-");
const configFile = path.join(dir, "bridge.json");
const dataDir = path.join(dir, "data");

before(() => {
  fs.writeFileSync(
    path.join(dir, "thermostat.mts"),
    [
      `import { DeviceAgent } from ${JSON.stringify(path.join(ROOT, "agents/device/index.ts"))};`,
      "class Thermostat extends DeviceAgent {}",
      "export { Thermostat as Thermo };",
    ].join("\n"),
  );
  fs.writeFileSync(
    configFile,
    JSON.stringify({
      dataDir,
      agents: { classes: [{ pattern: "thermo-*", module: "./thermostat.mts", export: "Thermo" }] },
    }),
  );
  // A registry that is already there: a refused add must leave it as it was.
  addDevice(dataDir, "existing-1");
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The ids in the registry, through the CLI. */
function listedIds(): string[] {
  const listed = runCli(["devices", "list", "--json", "--data-dir", dataDir]);
  assert.equal(listed.status, 0, listed.stderr);
  return (JSON.parse(listed.stdout) as Array<{ id: string }>).map((d) => d.id);
}

describe("devices add --agent-class", () => {
  test("without a config, a name other than DeviceAgent is a usage error naming the flag, the name and DeviceAgent", () => {
    const missing = path.join(dir, "never-made");
    const result = runCli(["devices", "add", "typo-1", "--agent-class", "DeviceAgnet", "--data-dir", missing]);
    assert.equal(result.status, 2, result.stderr);
    assert.equal(result.stdout, "");
    assert.equal(
      result.stderr,
      "error: --agent-class DeviceAgnet is not an agent class of this bridge (DeviceAgent)\n",
    );
    assert.equal(fs.existsSync(missing), false, "no data directory is made for a refused add");
  });

  test("with a config, an unknown name is refused with the config's classes named, and nothing is added", () => {
    const result = runCli(["devices", "add", "typo-2", "--agent-class", "Thermostst", "--config", configFile]);
    assert.equal(result.status, 2, result.stderr);
    assert.equal(result.stdout, "");
    assert.equal(
      result.stderr,
      "error: --agent-class Thermostst is not an agent class of this bridge (DeviceAgent, Thermostat, Thermo)\n",
    );
    assert.deepEqual(listedIds(), ["existing-1"]);
  });

  test("with --count an unknown name is refused the same way and none of the batch is added", () => {
    const result = runCli(
      ["devices", "add", "--count", "3", "--prefix", "typo-", "--agent-class", "Thermostst", "--json"],
      { BRIDGE_CONFIG: configFile },
    );
    assert.equal(result.status, 2, result.stderr);
    assert.equal(result.stdout, "");
    assert.equal(
      result.stderr,
      "error: --agent-class Thermostst is not an agent class of this bridge (DeviceAgent, Thermostat, Thermo)\n",
    );
    assert.deepEqual(listedIds(), ["existing-1"]);
  });

  test("a configured class is taken by its class name and by its export name, one id or --count", () => {
    const single = runCli(["devices", "add", "special-1", "--agent-class", "Thermostat", "--config", configFile]);
    assert.equal(single.status, 0, single.stderr);
    const batch = runCli(
      ["devices", "add", "--count", "2", "--prefix", "special-b", "--agent-class", "Thermo", "--json"],
      { BRIDGE_CONFIG: configFile },
    );
    assert.equal(batch.status, 0, batch.stderr);
    const listed = runCli(["devices", "list", "--json", "--data-dir", dataDir]);
    const classes = Object.fromEntries(
      (JSON.parse(listed.stdout) as Array<{ id: string; agentClass: string | null }>).map((d) => [d.id, d.agentClass]),
    );
    assert.deepEqual(classes, {
      "existing-1": null,
      "special-1": "Thermostat",
      "special-b1": "Thermo",
      "special-b2": "Thermo",
    });
  });

  test("without a config, DeviceAgent is taken", () => {
    const result = runCli(["devices", "add", "plain-1", "--agent-class", "DeviceAgent", "--data-dir", dataDir]);
    assert.equal(result.status, 0, result.stderr);
    assert.ok(listedIds().includes("plain-1"));
  });

  test("a configured class module that cannot be loaded stops the add with the entry named, and adds nothing", () => {
    const badConfig = path.join(dir, "bad.json");
    fs.writeFileSync(
      badConfig,
      JSON.stringify({ dataDir, agents: { classes: [{ pattern: "x-*", module: "./missing.mts", export: "X" }] } }),
    );
    const result = runCli(["devices", "add", "x-1", "--agent-class", "X", "--config", badConfig]);
    assert.equal(result.status, 1, result.stderr);
    assert.equal(result.stdout, "");
    assert.match(result.stderr, /^error: agents\.classes\[0\]\.module .*missing\.mts cannot be loaded\n$/);
    assert.ok(!listedIds().includes("x-1"));
  });
});
