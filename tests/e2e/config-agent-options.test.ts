/**
 * Per-class agent options (`agents.config.<ClassName>`) are checked when the bridge starts, like every other setting:
 * a bad option stops `start` with exit code 2 and a config error line naming the class and the field, instead of a
 * bridge that answers /readyz while every device's events fail when its agent wakes.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent } from "../../agents/index.ts";
import { DeviceAgent, type DeviceAgentOptions } from "../../agents/device/index.ts";
import { pino } from "pino";
import { createBridge } from "../../app/bridge.ts";
import { checkAgentConfig } from "../../app/bridge/agent-config.ts";
import { loadConfig } from "../../app/config/index.ts";
import { BridgeError } from "../../errors/index.ts";
import { makeTempDir, ROOT, runCli } from "./support/bridge-process.ts";

const tmp = makeTempDir("bridge-agent-options-");
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Writes `config` as a config file and runs `start` on it with its own data directory; nothing else runs there. */
function startWith(name: string, config: unknown): { file: string; result: ReturnType<typeof runCli> } {
  const file = path.join(tmp, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(config));
  const dataDir = path.join(tmp, `${name}-data`);
  const result = runCli(["start", "--config", file, "--data-dir", dataDir, "--mqtt-port", "0", "--http-port", "0"]);
  return { file, result };
}

describe("per-class agent options at start", () => {
  test("a bad DeviceAgent option stops start with exit code 2 and a line naming the class, the field and the file", () => {
    const { file, result } = startWith("bad-device-option", {
      agents: { config: { DeviceAgent: { maxHistoryChars: -1 } } },
    });
    assert.equal(result.status, 2, result.stdout + result.stderr);
    assert.equal(
      result.stderr.trim(),
      `config error: agents.config.DeviceAgent.maxHistoryChars must be an integer >= 0 (from config file ${file})`,
    );
    assert.doesNotMatch(result.stdout, /bridge started/);
  });

  test("a typo in a configured class's options and a config for a class the bridge does not have are both reported", () => {
    fs.writeFileSync(
      path.join(tmp, "thermostat.mts"),
      [
        `import { DeviceAgent } from ${JSON.stringify(path.join(ROOT, "agents/device/index.ts"))};`,
        "export class Thermostat extends DeviceAgent {}",
        "export { Thermostat as Thermo };",
      ].join("\n"),
    );
    const { file, result } = startWith("typo-and-unknown-class", {
      agents: {
        classes: [{ pattern: "thermo-*", module: "./thermostat.mts", export: "Thermo" }],
        config: {
          Thermostat: { maxHistroyChars: 100 },
          Thermo: { maxHistoryChars: 100 },
          Thermostst: { maxHistoryChars: 100 },
        },
      },
    });
    assert.equal(result.status, 2, result.stdout + result.stderr);
    assert.deepEqual(result.stderr.trim().split("\n"), [
      `config error: agents.config.Thermostat.maxHistroyChars is not a known option (from config file ${file})`,
      "config error: agents.config.Thermo is the export name of class Thermostat: options are keyed by class name " +
        `(from config file ${file})`,
      "config error: agents.config.Thermostst is not an agent class of this bridge (DeviceAgent, Thermostat) " +
        `(from config file ${file})`,
    ]);
  });
});

describe("per-class agent options and the app's own wiring", () => {
  test("a DeviceAgent class whose hook takes no options starts: the hooks never see the app's command observer", async () => {
    const module = path.join(tmp, "quiet.mts");
    fs.writeFileSync(
      module,
      [
        `import { DeviceAgent } from ${JSON.stringify(path.join(ROOT, "agents/device/index.ts"))};`,
        `import { BridgeError } from ${JSON.stringify(path.join(ROOT, "errors/index.ts"))};`,
        "export class Quiet extends DeviceAgent {",
        "  static override validateConfig(config: Readonly<Record<string, unknown>>): void {",
        "    const [key] = Object.keys(config);",
        '    if (key !== undefined) throw new BridgeError("BRIDGE_ERR_CONFIG", "Quiet takes no options", { field: key, rule: "is not an option of Quiet" });',
        "  }",
        "}",
      ].join("\n"),
    );
    const dataDir = path.join(tmp, "quiet-data");
    const loaded = loadConfig({
      overrides: {
        dataDir,
        mqtt: { host: "127.0.0.1", port: 0 },
        http: { host: "127.0.0.1", port: 0, apiToken: "a-long-enough-operator-token-0123" },
        agents: { classes: [{ pattern: "quiet-*", module, export: "Quiet" }] },
      },
    });
    assert.ok(loaded.ok, JSON.stringify(loaded));
    const bridge = await createBridge(loaded.config, { logger: pino({ level: "silent" }) });
    try {
      assert.equal((await bridge.runtime.call("quiet-1", "ping", [])).ok, true);
    } finally {
      await bridge.stop();
    }
  });
});

describe("a config file that sets what the bridge wires in itself", () => {
  test("agents.config.DeviceAgent.commandObserver stops the start with a rule that says it is wired in", async () => {
    const loaded = loadConfig({
      overrides: {
        dataDir: path.join(tmp, "wired-key-data"),
        mqtt: { host: "127.0.0.1", port: 0 },
        http: { host: "127.0.0.1", port: 0, apiToken: "a-long-enough-operator-token-0123" },
        agents: { config: { DeviceAgent: { commandObserver: "metrics" } } },
      },
    });
    assert.ok(loaded.ok, JSON.stringify(loaded));
    const started = createBridge(loaded.config, { logger: pino({ level: "silent" }) });
    // Stopped if it started after all, so that a failure here leaves nothing listening.
    started.then((bridge) => bridge.stop()).catch(() => {});
    await assert.rejects(started, (err: unknown) => {
      assert.ok(err instanceof BridgeError);
      assert.equal(err.code, "BRIDGE_ERR_CONFIG");
      assert.equal(err.details.field, "agents.config.DeviceAgent.commandObserver");
      assert.match(err.message, /is wired in, not an option: .*the bridge wires its own/);
      return true;
    });
  });
});

/** A class with its own built-in options: one of them out of range, so every agent of it would fail to build. */
class Gauge extends DeviceAgent {
  static override deviceOptions: Partial<DeviceAgentOptions> = { promptTelemetryRows: -5 };
}

/** Not a DeviceAgent: its own hook decides what its options may be. */
class Counter extends Agent {
  static override validateConfig(config: Readonly<Record<string, unknown>>): void {
    if (config.step !== undefined && typeof config.step !== "number") {
      throw new BridgeError("BRIDGE_ERR_CONFIG", "step must be a number", { field: "step", rule: "must be a number" });
    }
  }
}

describe("checkAgentConfig", () => {
  const loaded = [
    { pattern: "gauge-*", agentClass: Gauge },
    { pattern: "counter-*", agentClass: Counter },
  ];
  const exports = ["Gauge", "Counter"];

  test("good options of every class, DeviceAgent's included, give no issue", () => {
    const fixed = [{ pattern: "counter-*", agentClass: Counter }];
    const config = { DeviceAgent: { maxHistoryChars: 0, model: "m" }, Counter: { step: 2 } };
    assert.deepEqual(checkAgentConfig(config, DeviceAgent, fixed, ["Counter"]), []);
    assert.deepEqual(checkAgentConfig({}, DeviceAgent, [], []), []);
  });

  test("a command observer among the options is refused: the bridge wires its own in, apart from them", () => {
    assert.deepEqual(checkAgentConfig({ DeviceAgent: { commandObserver: "metrics" } }, DeviceAgent, [], []), [
      {
        field: "agents.config.DeviceAgent.commandObserver",
        message:
          "is wired in, not an option: pass it in createRuntime's agentWiring (commandObserverWiring); the bridge " +
          "wires its own",
      },
    ]);
  });

  test("a class's own bad built-in option is reported from the class even without a config entry", () => {
    assert.deepEqual(checkAgentConfig({ Counter: { step: 1 } }, DeviceAgent, loaded, exports), [
      { field: "agents.config.Gauge.promptTelemetryRows", message: "must be an integer >= 0", source: "class Gauge" },
    ]);
  });

  test("an entry that sets the option right fixes the class's bad built-in one", () => {
    assert.deepEqual(checkAgentConfig({ Gauge: { promptTelemetryRows: 5 } }, DeviceAgent, loaded, exports), []);
  });

  test("a class's own validateConfig hook is asked, and its rule reported under the class name", () => {
    const config = { Gauge: { promptTelemetryRows: 5 }, Counter: { step: "two" } };
    assert.deepEqual(checkAgentConfig(config, DeviceAgent, loaded, exports), [
      { field: "agents.config.Counter.step", message: "must be a number" },
    ]);
  });
});
