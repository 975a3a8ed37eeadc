/**
 * docs/operations.md names only what exists: settings and their environment variables, error codes, the metrics a
 * running bridge exports, and the alerts of deploy/prometheus/alerts.yml, every one of them.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import type { Bridge } from "../../app/bridge.ts";
import { loadConfig, SETTING_SOURCES } from "../../app/config/index.ts";
import { tempDir } from "../agents/helpers.ts";
import { createLoopbackBridge } from "../support/in-process-bridge.ts";
import { exportedSeriesNames } from "./support/promql-metrics.ts";
import { REPO_ROOT } from "./support/runtime-import-graph.ts";

const TOKEN = "operations-doc-token-0123456789";
const read = (file: string): string => fs.readFileSync(path.join(REPO_ROOT, file), "utf8");
const guide = read("docs/operations.md");

/** Every text between backticks in the guide. */
const quoted = [...guide.matchAll(/`([^`\n]+)`/g)].map((match) => match[1]);

/** Every dotted path of a config object (`mqtt.limits.maxConnections`), containers included. */
function settingPaths(value: unknown, prefix = ""): string[] {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return [];
  return Object.entries(value).flatMap(([key, inner]) => {
    const here = prefix === "" ? key : `${prefix}.${key}`;
    return [here, ...settingPaths(inner, here)];
  });
}

const data = tempDir("operations-doc-");
let bridge: Bridge | undefined;
let exported = new Set<string>();

before(async () => {
  bridge = await createLoopbackBridge({ dataDir: data.dir, apiToken: TOKEN });
  const addresses = await bridge.start();
  assert.ok(addresses.http !== undefined);
  const answer = await fetch(`http://127.0.0.1:${addresses.http.port}/metrics`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  exported = exportedSeriesNames(await answer.text());
});

after(async () => {
  await bridge?.stop();
  data.remove();
});

test("every setting and environment variable it names is one the bridge reads", () => {
  const loaded = loadConfig({ env: {} });
  assert.ok(loaded.ok);
  const paths = new Set([...settingPaths(loaded.config), ...SETTING_SOURCES.map((s) => s.path)]);
  const variables = new Set(["BRIDGE_CONFIG", ...SETTING_SOURCES.flatMap((s) => (s.env === undefined ? [] : [s.env]))]);
  const settings = quoted.flatMap((text) => [...text.matchAll(/\b(?:mqtt|http|engine|agents|shutdown|log)\.[\w.]+/g)]);
  assert.ok(settings.length > 10, "the guide names settings");
  for (const [setting] of settings) assert.ok(paths.has(setting.replace(/\.$/, "")), `setting ${setting}`);
  for (const [name] of guide.matchAll(/\bBRIDGE_(?!ERR_)[A-Z_]+\b/g)) assert.ok(variables.has(name), name);
});

test("every error code it names is in docs/errors.md", () => {
  const errors = read("docs/errors.md");
  for (const [code] of guide.matchAll(/\bBRIDGE_ERR_[A-Z_]+\b/g)) {
    assert.ok(errors.includes(`\`${code}\``), `${code} is in errors.md`);
  }
});

test("every metric it names is exported by a running bridge", () => {
  const metrics = quoted.flatMap((text) => [...text.matchAll(/\b(?:bridge|process|nodejs)_[a-z_]+\b/g)]);
  assert.ok(metrics.length > 10, "the guide names metrics");
  for (const [name] of metrics) assert.ok(exported.has(name), `${name} is exported`);
});

test("it lists every alert of deploy/prometheus/alerts.yml, and no other", () => {
  const rules = [...read("deploy/prometheus/alerts.yml").matchAll(/^\s*- alert: (\S+)$/gm)].map((m) => m[1]).sort();
  const listed = [...new Set(quoted.filter((text) => /^AgentBridge\w+$/.test(text)))].sort();
  assert.deepEqual(listed, rules);
});
