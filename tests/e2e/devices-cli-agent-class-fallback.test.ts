/**
 * `agent-bridge devices list` and devices whose agent class the bridge started with the given config does not serve (a
 * class removed from `agents.classes`): the list showed the class name they were provisioned with and nothing else, so
 * an operator who removed a class could not find the devices it affected nor tell what serves them now. It names the
 * class that serves them instead (by the first pattern their id matches, else DeviceAgent), and
 * `--agent-class-fallback` lists only them.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { makeTempDir, ROOT, runCli } from "./support/bridge-process.ts";

const dir = makeTempDir("bridge-devices-cli-fallback-");
const dataDir = path.join(dir, "data");
/** The config the devices were provisioned under: Thermostat for thermo-*, Humidistat for humid-*. */
const beforeConfig = path.join(dir, "before.json");
/** The config after Humidistat was removed: Thermostat now serves every id (pattern "*"). */
const afterConfig = path.join(dir, "after.json");

function writeClass(name: string): void {
  fs.writeFileSync(
    path.join(dir, `${name.toLowerCase()}.mts`),
    [
      `import { DeviceAgent } from ${JSON.stringify(path.join(ROOT, "agents/device/index.ts"))};`,
      `export class ${name} extends DeviceAgent {}`,
    ].join("\n"),
  );
}

function add(id: string, agentClass?: string): void {
  const args = ["devices", "add", id, "--config", beforeConfig, "--json"];
  const result = runCli(agentClass === undefined ? args : [...args, "--agent-class", agentClass]);
  assert.equal(result.status, 0, result.stderr);
}

before(() => {
  writeClass("Thermostat");
  writeClass("Humidistat");
  const entry = (pattern: string, name: string) => ({ pattern, module: `./${name.toLowerCase()}.mts`, export: name });
  fs.writeFileSync(
    beforeConfig,
    JSON.stringify({
      dataDir,
      agents: { classes: [entry("thermo-*", "Thermostat"), entry("humid-*", "Humidistat")] },
    }),
  );
  fs.writeFileSync(afterConfig, JSON.stringify({ dataDir, agents: { classes: [entry("*", "Thermostat")] } }));
  add("humid-1", "Humidistat");
  add("plain-1");
  add("thermo-1", "Thermostat");
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function list(config: string, ...flags: string[]): { status: number | null; stdout: string; stderr: string } {
  return runCli(["devices", "list", "--config", config, ...flags]);
}

describe("devices list and agent classes the bridge does not serve", () => {
  test("--json names the class that serves a device in place of one the config no longer has, null otherwise", () => {
    const result = list(afterConfig, "--json");
    assert.equal(result.status, 0, result.stderr);
    const rows = (JSON.parse(result.stdout) as Array<Record<string, unknown>>).map((d) => [
      d.id,
      d.agentClass,
      d.agentClassFallback,
    ]);
    assert.deepEqual(rows, [
      ["humid-1", "Humidistat", "Thermostat"],
      ["plain-1", null, null],
      ["thermo-1", "Thermostat", null],
    ]);
  });

  test("with the config the classes were provisioned under, no device falls back", () => {
    const result = list(beforeConfig, "--json");
    assert.equal(result.status, 0, result.stderr);
    const fallbacks = (JSON.parse(result.stdout) as Array<{ agentClassFallback: unknown }>).map(
      (d) => d.agentClassFallback,
    );
    assert.deepEqual(fallbacks, [null, null, null]);
  });

  test("the table shows the class asked for and what serves the device instead", () => {
    const result = list(afterConfig);
    assert.equal(result.status, 0, result.stderr);
    const lines = result.stdout.trimEnd().split("\n");
    assert.equal(lines[0], ["ID", "CODEC", "AGENT CLASS", "FIRMWARE", "CREATED", "LAST SEEN"].join("\t"));
    assert.equal(lines[1]?.split("\t")[2], "Humidistat (not served; served by Thermostat)");
    assert.equal(lines[2]?.split("\t")[2], "default");
    assert.equal(lines[3]?.split("\t")[2], "Thermostat");
  });

  test("--agent-class-fallback lists only those devices, and says so when there are none", () => {
    const only = list(afterConfig, "--agent-class-fallback", "--json");
    assert.equal(only.status, 0, only.stderr);
    assert.deepEqual(
      (JSON.parse(only.stdout) as Array<{ id: string }>).map((d) => d.id),
      ["humid-1"],
    );
    const none = list(beforeConfig, "--agent-class-fallback");
    assert.equal(none.status, 0, none.stderr);
    assert.equal(none.stdout, "no devices ask for an agent class this bridge does not serve\n");
    const noneJson = list(beforeConfig, "--agent-class-fallback", "--json");
    assert.equal(noneJson.stdout, "[]\n");
  });
});
