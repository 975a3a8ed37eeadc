/**
 * deploy/systemd/agent-bridge.service: systemd itself accepts it (`systemd-analyze verify`, where installed), and what
 * it says about the bridge is true of the bridge: the command `npm start` runs, the exit code of a bad setting, a stop
 * timeout past the bridge's own, file descriptors for its default limits, and settings the bridge reads.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { EXIT_FAILURE, EXIT_USAGE } from "../../app/cli/exit.ts";
import { loadConfig, SETTING_SOURCES } from "../../app/config/index.ts";
import { socketsPerListener } from "../../broker/listener-bound.ts";
import { missingDebianPackage } from "../support/debian-package.ts";
import { REPO_ROOT } from "./support/runtime-import-graph.ts";

const UNIT_FILE = path.join(REPO_ROOT, "deploy/systemd/agent-bridge.service");
const unitText = readFileSync(UNIT_FILE, "utf8");

/** The [Service] section's settings, each key with every value it was given, in order. */
function serviceSettings(text: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header !== null) {
      section = header[1];
      continue;
    }
    if (section !== "Service") continue;
    const at = line.indexOf("=");
    const key = line.slice(0, at);
    settings.set(key, [...(settings.get(key) ?? []), line.slice(at + 1)]);
  }
  return settings;
}

const service = serviceSettings(unitText);
const one = (key: string): string => {
  const values = service.get(key) ?? [];
  assert.equal(values.length, 1, `one ${key}=`);
  return values[0];
};
const environment = new Map(
  (service.get("Environment") ?? []).map((pair) => {
    const at = pair.indexOf("=");
    return [pair.slice(0, at), pair.slice(at + 1)] as const;
  }),
);
const defaults = (() => {
  const loaded = loadConfig({ env: {} });
  assert.ok(loaded.ok);
  return loaded.config;
})();

test("systemd-analyze verify accepts the unit without a warning", (t) => {
  const skip = missingDebianPackage("systemd", "systemd-analyze");
  if (skip !== undefined) {
    t.skip(skip);
    return;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), "agent-bridge-unit-"));
  try {
    // verify checks that ExecStart's program exists: where node lives elsewhere, the copy names this node instead.
    const text = existsSync("/usr/bin/node") ? unitText : unitText.replace("/usr/bin/node ", `${process.execPath} `);
    const copy = path.join(dir, "agent-bridge.service");
    writeFileSync(copy, text);
    const result = spawnSync("systemd-analyze", ["verify", "--man=no", copy], { encoding: "utf8" });
    assert.equal(result.status, 0, result.stderr);
    // Unknown keys and bad values are only warnings to verify (exit 0), and systemd ignores them when it runs the unit.
    assert.equal(result.stderr.trim(), "", "verify warned");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("ExecStart runs what package.json's start script runs", () => {
  const packageJson = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as {
    scripts: Record<string, string>;
  };
  const [program, ...args] = one("ExecStart").split(/\s+/);
  const [scriptProgram, ...scriptArgs] = packageJson.scripts.start.replace(/^exec\s+/, "").split(/\s+/);
  assert.equal(path.basename(program), scriptProgram);
  assert.ok(path.isAbsolute(program));
  assert.deepEqual(args, scriptArgs);
  assert.ok(existsSync(path.join(REPO_ROOT, args[0])), `${args[0]} exists`);
});

test("a bad setting (exit 2) is not restarted, a failure at run time (exit 1) is", () => {
  assert.equal(one("Restart"), "on-failure");
  const prevented = one("RestartPreventExitStatus").split(/\s+/).map(Number);
  assert.ok(prevented.includes(EXIT_USAGE));
  assert.ok(!prevented.includes(EXIT_FAILURE));
});

test("systemd waits longer than the bridge's own graceful stop bound before SIGKILL", () => {
  assert.equal(one("KillSignal"), "SIGTERM");
  const stopSeconds = Number(one("TimeoutStopSec"));
  assert.ok(stopSeconds > defaults.shutdown.timeoutMs / 1000, `${stopSeconds} s > shutdown.timeoutMs`);
  assert.equal(environment.get("BRIDGE_SHUTDOWN_TIMEOUT_MS"), undefined, "the unit keeps the default it is sized for");
});

test("LimitNOFILE holds the sockets and agent databases of the default limits", () => {
  const limits = defaults.mqtt.limits;
  // Both MQTT listeners (TCP, TLS) at their socket bound, the HTTP server (MQTT over WebSocket included), and each
  // agent in memory with its database, WAL and shared-memory file open; 256 for the rest of the process.
  const needed =
    2 * socketsPerListener(limits.maxConnections) + defaults.http.maxConnections + 3 * defaults.agents.maxActiveAgents;
  assert.ok(Number(one("LimitNOFILE")) >= needed + 256, `LimitNOFILE >= ${needed + 256}`);
});

test("the environment it sets holds only the bridge's settings, with values the bridge takes", () => {
  const known = new Set(SETTING_SOURCES.flatMap((s) => (s.env === undefined ? [] : [s.env])));
  for (const key of environment.keys()) assert.ok(known.has(key), `${key} is a setting's environment variable`);
  const loaded = loadConfig({ env: Object.fromEntries(environment) });
  assert.ok(loaded.ok, JSON.stringify(loaded.ok ? [] : loaded.issues));
  assert.ok(!environment.has("BRIDGE_API_TOKEN") && !environment.has("BRIDGE_ENGINE_API_KEY"), "no secret in the unit");
});

test("the data directory is the state directory, the only path it may write, and the service is hardened", () => {
  const dataDir = environment.get("BRIDGE_DATA_DIR");
  assert.equal(dataDir, `/var/lib/${one("StateDirectory")}`);
  assert.equal(one("StateDirectoryMode"), "0700");
  assert.deepEqual(one("ReadWritePaths").split(/\s+/), [dataDir]);
  assert.notEqual(one("User"), "root");
  for (const [key, value] of [
    ["NoNewPrivileges", "yes"],
    ["ProtectSystem", "strict"],
    ["ProtectHome", "yes"],
    ["PrivateTmp", "yes"],
  ]) {
    assert.equal(one(key), value, key);
  }
  // V8's JIT writes the code it then runs; MemoryDenyWriteExecute=yes would stop node at start.
  assert.equal(service.get("MemoryDenyWriteExecute"), undefined);
});
