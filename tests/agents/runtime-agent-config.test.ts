import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, DeviceAgent, type Value } from "../../agents/index.ts";
import type { DeviceAgentOptions } from "../../agents/device/index.ts";
import { BridgeError } from "../../errors/index.ts";
import { tempDir, testRuntime } from "./helpers.ts";

/** A class with its own built-in options, one of them out of range: every agent of it would fail to build. */
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

/** A hook that throws a plain Error, as a hand-written one may. */
class Picky extends Agent {
  static override validateConfig(): void {
    throw new Error("picky refuses everything");
  }
}

/** What createRuntime threw, checked to be a BridgeError. */
function refusal(create: () => unknown): BridgeError {
  try {
    create();
  } catch (err) {
    assert.ok(err instanceof BridgeError, `a BridgeError, not ${String(err)}`);
    return err;
  }
  assert.fail("createRuntime accepted the options");
}

describe("createRuntime checks per-class agent options", () => {
  const t = tempDir();
  after(() => t.remove());

  test("a bad option of the default class is a BRIDGE_ERR_CONFIG naming it, before anything is opened", () => {
    const dataDir = path.join(t.dir, "bad-default");
    const err = refusal(() =>
      testRuntime(dataDir, DeviceAgent, 1, { agentConfig: { DeviceAgent: { telemetryMaxRows: "many" } } }),
    );
    assert.equal(err.code, "BRIDGE_ERR_CONFIG");
    assert.equal(err.details.field, "agentConfig.DeviceAgent.telemetryMaxRows");
    assert.equal(typeof err.details.rule, "string");
    assert.equal(err.details.agentClass, "DeviceAgent");
    assert.ok(err.cause instanceof BridgeError, "the class's own error is kept as the cause");
    assert.match(err.message, /^agentConfig\.DeviceAgent\.telemetryMaxRows /);
    assert.equal(fs.existsSync(dataDir), false, "no folder or database was made");
  });

  test("a mapped class's own hook is asked with its entry, and a class without one with {}", () => {
    const counter = { pattern: "counter-*", agentClass: Counter };
    const err = refusal(() =>
      testRuntime(path.join(t.dir, "bad-hook"), DeviceAgent, 2, {
        agentClasses: [counter, { pattern: "gauge-*", agentClass: Gauge }],
        agentConfig: { Counter: { step: "two" }, Gauge: { promptTelemetryRows: 5 } },
      }),
    );
    assert.equal(err.details.field, "agentConfig.Counter.step");
    const own = refusal(() =>
      testRuntime(path.join(t.dir, "bad-own"), DeviceAgent, 3, {
        agentClasses: [counter, { pattern: "gauge-*", agentClass: Gauge }],
      }),
    );
    assert.equal(own.details.field, "agentConfig.Gauge.promptTelemetryRows", "the class's own option is refused");
  });

  test("every problem is listed in details.issues; a plain Error from a hook counts as one", () => {
    const err = refusal(() =>
      testRuntime(path.join(t.dir, "many"), DeviceAgent, 4, {
        agentClasses: [{ pattern: "p-*", agentClass: Picky }],
        agentConfig: { DeviceAgent: { telemetryMaxRows: "many" } },
      }),
    );
    const issues = err.details.issues as Array<{ field: string; message: string }>;
    assert.deepEqual(
      issues.map((i) => i.field),
      ["agentConfig.DeviceAgent.telemetryMaxRows", "agentConfig.Picky"],
    );
    assert.equal(issues[1].message, "picky refuses everything");
  });

  test("a key that names no class of the runtime is refused instead of being ignored", () => {
    const err = refusal(() =>
      testRuntime(path.join(t.dir, "unknown"), DeviceAgent, 5, { agentConfig: { Thermostst: { x: 1 } } }),
    );
    assert.equal(err.code, "BRIDGE_ERR_CONFIG");
    assert.equal(err.details.field, "agentConfig.Thermostst");
    assert.match(err.message, /is not an agent class of this runtime \(DeviceAgent\)/);
  });

  test("an entry that is not an object is refused", () => {
    const err = refusal(() =>
      testRuntime(path.join(t.dir, "not-object"), DeviceAgent, 6, {
        agentConfig: { DeviceAgent: null as unknown as Record<string, unknown> },
      }),
    );
    assert.equal(err.details.field, "agentConfig.DeviceAgent");
  });

  test("good options start as before", async () => {
    const rt = testRuntime(path.join(t.dir, "good"), DeviceAgent, 7, {
      agentClasses: [{ pattern: "counter-*", agentClass: Counter }],
      agentConfig: { DeviceAgent: { telemetryMaxRows: 10 }, Counter: { step: 2 } },
    });
    await rt.shutdown();
  });

  test("agentWiring reaches the agents' env.config without being given to validateConfig", async () => {
    const seen: Array<Readonly<Record<string, unknown>>> = [];
    const wired = (): string => "wired";
    class Plain extends Agent {
      static override validateConfig(config: Readonly<Record<string, unknown>>): void {
        seen.push(config);
        const [key] = Object.keys(config).filter((k) => k !== "level");
        if (key !== undefined) {
          throw new BridgeError("BRIDGE_ERR_CONFIG", "unknown option", { field: key, rule: "is not an option" });
        }
      }
      seenEnv(): Value {
        const hook = this.env.config.hook;
        return { level: String(this.env.config.level), hook: typeof hook === "function" ? String(hook()) : null };
      }
    }
    const rt = testRuntime(path.join(t.dir, "wiring"), Plain, 8, {
      agentConfig: { Plain: { level: 2 } },
      agentWiring: { Plain: { hook: wired } },
    });
    try {
      assert.deepEqual(seen, [{ level: 2 }], "the hook saw the options only");
      assert.deepEqual(await rt.call("a", "seenEnv", []), { ok: true, value: { level: "2", hook: "wired" } });
    } finally {
      await rt.shutdown();
    }
  });

  test("an agentWiring key that names no class of the runtime is refused instead of being ignored", () => {
    const err = refusal(() =>
      testRuntime(path.join(t.dir, "wiring-unknown"), DeviceAgent, 9, {
        agentWiring: { Thermostst: { hook: () => {} } },
      }),
    );
    assert.equal(err.code, "BRIDGE_ERR_CONFIG");
    assert.equal(err.details.field, "agentWiring.Thermostst");
  });

  test("an agentWiring value that would replace an option of agentConfig is refused, not swapped in unchecked", () => {
    const err = refusal(() =>
      testRuntime(path.join(t.dir, "wiring-over-option"), Counter, 10, {
        agentConfig: { Counter: { step: 2, hook: "from the user" } },
        agentWiring: { Counter: { hook: () => "wired" } },
      }),
    );
    assert.equal(err.code, "BRIDGE_ERR_CONFIG");
    assert.equal(err.details.field, "agentConfig.Counter.hook");
    assert.equal(err.details.agentClass, "Counter");
    assert.match(err.message, /agentConfig\.Counter\.hook is wired in by the embedder \(agentWiring\), not an option/);
  });
});
