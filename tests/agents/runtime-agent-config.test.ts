import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type AgentWiring, DeviceAgent, type Value } from "../../agents/index.ts";
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

  test("agentWiring reaches the agents as env.wiring, apart from env.config; each hook sees its own part only", async () => {
    const seenConfig: Array<Readonly<Record<string, unknown>>> = [];
    const seenWiring: AgentWiring[] = [];
    const wired = (): string => "wired";
    class Plain extends Agent {
      static override validateConfig(config: Readonly<Record<string, unknown>>): void {
        seenConfig.push(config);
        const [key] = Object.keys(config).filter((k) => k !== "level");
        if (key !== undefined) {
          throw new BridgeError("BRIDGE_ERR_CONFIG", "unknown option", { field: key, rule: "is not an option" });
        }
      }
      static override validateWiring(wiring: AgentWiring): void {
        seenWiring.push(wiring);
      }
      seenEnv(): Value {
        const hook = this.env.wiring.hook;
        return {
          config: Object.keys(this.env.config),
          wiring: Object.keys(this.env.wiring),
          hook: typeof hook === "function" ? String(hook()) : null,
        };
      }
    }
    const rt = testRuntime(path.join(t.dir, "wiring"), Plain, 8, {
      agentConfig: { Plain: { level: 2 } },
      agentWiring: { Plain: { hook: wired } },
    });
    try {
      assert.deepEqual(seenConfig, [{ level: 2 }], "validateConfig saw the options only");
      assert.deepEqual(seenWiring, [{ hook: wired }], "validateWiring saw the wiring only");
      assert.deepEqual(await rt.call("a", "seenEnv", []), {
        ok: true,
        value: { config: ["level"], wiring: ["hook"], hook: "wired" },
      });
    } finally {
      await rt.shutdown();
    }
  });

  test("a class without wiring gets env.wiring {} and its validateWiring is asked with {}", async () => {
    const asked: AgentWiring[] = [];
    class Bare extends Agent {
      static override validateWiring(wiring: AgentWiring): void {
        asked.push(wiring);
      }
      wiringKeys(): Value {
        return Object.keys(this.env.wiring);
      }
    }
    const rt = testRuntime(path.join(t.dir, "no-wiring"), Bare, 11);
    try {
      assert.deepEqual(asked, [{}]);
      assert.deepEqual(await rt.call("b", "wiringKeys", []), { ok: true, value: [] });
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

  test("an option and a wired value of the same name are each kept in their own place", async () => {
    class Both extends Agent {
      both(): Value {
        const hook = this.env.wiring.hook;
        return { option: String(this.env.config.hook), wired: typeof hook === "function" ? String(hook()) : null };
      }
    }
    const rt = testRuntime(path.join(t.dir, "same-name"), Both, 10, {
      agentConfig: { Both: { hook: "from the user" } },
      agentWiring: { Both: { hook: () => "wired" } },
    });
    try {
      assert.deepEqual(await rt.call("c", "both", []), {
        ok: true,
        value: { option: "from the user", wired: "wired" },
      });
    } finally {
      await rt.shutdown();
    }
  });

  test("a class's validateWiring refusal is a BRIDGE_ERR_CONFIG under agentWiring, listed with the options' issues", () => {
    class Needy extends Agent {
      static override validateWiring(wiring: AgentWiring): void {
        if (typeof wiring.notify !== "function") {
          const rule = "must be a function";
          throw new BridgeError("BRIDGE_ERR_CONFIG", `notify ${rule}`, { field: "notify", rule });
        }
      }
    }
    const dataDir = path.join(t.dir, "needy");
    const err = refusal(() =>
      testRuntime(dataDir, Needy, 12, {
        agentClasses: [{ pattern: "counter-*", agentClass: Counter }],
        agentConfig: { Counter: { step: "two" } },
      }),
    );
    assert.equal(err.code, "BRIDGE_ERR_CONFIG");
    const issues = err.details.issues as Array<{ field: string; message: string; source?: string }>;
    assert.deepEqual(issues, [
      { field: "agentConfig.Counter.step", message: "must be a number", agentClass: "Counter" },
      { field: "agentWiring.Needy.notify", message: "must be a function", agentClass: "Needy" },
    ]);
    assert.equal(fs.existsSync(dataDir), false, "no folder or database was made");
  });

  test("agentWiring that is not an object of objects is refused", () => {
    const notObject = refusal(() =>
      testRuntime(path.join(t.dir, "wiring-not-object"), DeviceAgent, 13, {
        agentWiring: [] as unknown as Record<string, AgentWiring>,
      }),
    );
    assert.equal(notObject.details.field, "agentWiring");
    const entry = refusal(() =>
      testRuntime(path.join(t.dir, "wiring-entry"), DeviceAgent, 14, {
        agentWiring: { DeviceAgent: 5 as unknown as AgentWiring },
      }),
    );
    assert.equal(entry.details.field, "agentWiring.DeviceAgent");
    assert.match(entry.message, /must be an object of values/);
  });
});
