/**
 * The engine client's health-check timeout, stall probe and idle-consumer watchdog are bridge settings like the other
 * engine options: file, environment, validated with errors naming the field, and handed to the client as given.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { engineClientInit } from "../../app/bridge/engine-init.ts";
import { formatConfigIssue, loadConfig } from "../../app/config/index.ts";
import { ENGINE_CLIENT_DEFAULTS, resolveEngineClientOptions } from "../../engine-client/index.ts";
import { loopbackStartArgs, makeTempDir, runCli } from "./support/bridge-process.ts";

const tmp = makeTempDir("bridge-engine-options-");
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function errorsOf(result: ReturnType<typeof loadConfig>): string[] {
  assert.equal(result.ok, false, "expected the configuration to be refused");
  return result.ok ? [] : result.issues.map(formatConfigIssue);
}

describe("engine health and watchdog settings", () => {
  test("their defaults are the engine client's own", () => {
    const result = loadConfig({});
    assert.ok(result.ok);
    const engine = result.config.engine;
    assert.equal(engine.healthCheckTimeoutMs, ENGINE_CLIENT_DEFAULTS.healthCheckTimeoutMs);
    assert.equal(engine.consumerIdleTimeoutMs, ENGINE_CLIENT_DEFAULTS.consumerIdleTimeoutMs);
    assert.deepEqual(engine.cooldown, {
      stallProbeTimeoutMs: ENGINE_CLIENT_DEFAULTS.cooldown.stallProbeTimeoutMs,
      stallProbeIntervalMs: ENGINE_CLIENT_DEFAULTS.cooldown.stallProbeIntervalMs,
    });
  });

  test("they come from the environment, win over the file, and reach the engine client", () => {
    const result = loadConfig({
      overrides: { engine: { urls: ["http://127.0.0.1:8000"], cooldown: { stallProbeTimeoutMs: 9999 } } },
      env: {
        BRIDGE_ENGINE_HEALTH_CHECK_TIMEOUT_MS: "1500",
        BRIDGE_ENGINE_CONSUMER_IDLE_TIMEOUT_MS: "120000",
        BRIDGE_ENGINE_STALL_PROBE_TIMEOUT_MS: "750",
        BRIDGE_ENGINE_STALL_PROBE_INTERVAL_MS: "0",
      },
    });
    assert.ok(result.ok);
    assert.equal(result.sources.get("engine.cooldown.stallProbeTimeoutMs"), "BRIDGE_ENGINE_STALL_PROBE_TIMEOUT_MS");
    const options = resolveEngineClientOptions(engineClientInit(result.config));
    assert.equal(options.healthCheckTimeoutMs, 1500);
    assert.equal(options.consumerIdleTimeoutMs, 120_000);
    assert.equal(options.cooldown.stallProbeTimeoutMs, 750);
    assert.equal(options.cooldown.stallProbeIntervalMs, 0, "0 leaves only the one-probe-at-a-time bound");
    // The cooldown settings the bridge does not expose keep the client's defaults.
    assert.equal(options.cooldown.failureThreshold, ENGINE_CLIENT_DEFAULTS.cooldown.failureThreshold);
    assert.equal(options.cooldown.cooldownMs, ENGINE_CLIENT_DEFAULTS.cooldown.cooldownMs);
  });

  test("the other engine settings still reach the client", () => {
    const result = loadConfig({
      overrides: {
        engine: {
          urls: ["http://127.0.0.1:8000"],
          apiKey: "engine-key",
          model: "m",
          maxInFlightPerReplica: 8,
          maxQueued: 16,
          priorityAgingMs: 0,
          headersTimeoutMs: 30_000,
          bodyTimeoutMs: 20_000,
        },
      },
    });
    assert.ok(result.ok);
    const options = resolveEngineClientOptions(engineClientInit(result.config));
    assert.deepEqual(options.urls, ["http://127.0.0.1:8000"]);
    assert.equal(options.apiKey, "engine-key");
    assert.equal(options.model, "m");
    assert.equal(options.maxInFlightPerReplica, 8);
    assert.equal(options.maxQueued, 16);
    assert.equal(options.priorityAgingMs, 0);
    assert.equal(options.headersTimeoutMs, 30_000);
    assert.equal(options.bodyTimeoutMs, 20_000);
  });

  test("a bad value names the field, the rule and where it came from", () => {
    assert.deepEqual(
      errorsOf(
        loadConfig({
          env: {
            BRIDGE_ENGINE_HEALTH_CHECK_TIMEOUT_MS: "2s",
            BRIDGE_ENGINE_CONSUMER_IDLE_TIMEOUT_MS: "0",
            BRIDGE_ENGINE_STALL_PROBE_TIMEOUT_MS: "0",
            BRIDGE_ENGINE_STALL_PROBE_INTERVAL_MS: "-1",
          },
        }),
      ).sort(),
      [
        "config error: engine.consumerIdleTimeoutMs must be an integer from 1 to 86400000 (from BRIDGE_ENGINE_CONSUMER_IDLE_TIMEOUT_MS)",
        "config error: engine.cooldown.stallProbeIntervalMs must be an integer from 0 to 3600000 (from BRIDGE_ENGINE_STALL_PROBE_INTERVAL_MS)",
        "config error: engine.cooldown.stallProbeTimeoutMs must be an integer from 1 to 3600000 (from BRIDGE_ENGINE_STALL_PROBE_TIMEOUT_MS)",
        "config error: engine.healthCheckTimeoutMs must be an integer from 1 to 3600000 (from BRIDGE_ENGINE_HEALTH_CHECK_TIMEOUT_MS)",
      ],
    );
    assert.deepEqual(errorsOf(loadConfig({ overrides: { engine: { cooldown: { stallProbeTimeoutMs: 1.5 } } } })), [
      "config error: engine.cooldown.stallProbeTimeoutMs must be an integer from 1 to 3600000 (from overrides)",
    ]);
    assert.deepEqual(errorsOf(loadConfig({ overrides: { engine: { cooldown: 5 } } })).length, 1);
  });
});

describe("engine settings the engine client refuses at start", () => {
  /** `start` on a data directory of its own; nothing listens on the engine URLs (the start must not get that far). */
  function start(name: string, args: string[]) {
    const dataDir = path.join(tmp, name);
    const result = runCli([...loopbackStartArgs(dataDir), ...args]);
    return { result, dataDir };
  }

  test("are config errors: exit code 2 and a line naming the field and where it came from", () => {
    // Two spellings of one replica: the schema takes each URL, the engine client refuses the pair.
    const repeated = start("repeated-replica", [
      "--engine-url",
      "http://127.0.0.1:9",
      "--engine-url",
      "http://127.0.0.1:9/v1",
    ]);
    assert.equal(repeated.result.status, 2, repeated.result.stdout + repeated.result.stderr);
    assert.equal(
      repeated.result.stderr.trim(),
      "config error: engine.urls must not repeat a replica (from --engine-url)",
    );
    assert.doesNotMatch(repeated.result.stdout, /bridge started|bridge could not be built/);
    assert.equal(fs.existsSync(path.join(repeated.dataDir, "bridge.lock")), false, "the data directory is let go");

    const file = path.join(tmp, "api-key-line-break.json");
    fs.writeFileSync(file, JSON.stringify({ engine: { urls: ["http://127.0.0.1:9"], apiKey: "engine-key\nmore" } }));
    const key = start("api-key-line-break", ["--config", file]);
    assert.equal(key.result.status, 2, key.result.stdout + key.result.stderr);
    assert.equal(
      key.result.stderr.trim(),
      `config error: engine.apiKey must be a string without line breaks, control characters or characters beyond Latin-1 (it goes in an HTTP header) (from config file ${file})`,
    );
  });
});
