/**
 * Options and wiring are keyed by class name, and a class may be named like a member of Object.prototype
 * (`constructor`, `toString`, `__proto__`): every lookup by class name reads the object's own entries only, so such a
 * class without an entry gets `{}`, not the inherited function or prototype.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type AgentClass, DeviceAgent, type Value } from "../../agents/index.ts";
import { commandObserverWiring } from "../../agents/device/index.ts";
import { tempDir, testRuntime } from "./helpers.ts";

/** How an agent sees a value it was given: a plain object (with its own keys), or what else it is. */
function shape(value: unknown): Value {
  if (typeof value !== "object" || value === null) return typeof value;
  if (Object.getPrototypeOf(value) !== Object.prototype) return "an object that is not plain";
  return Object.keys(value);
}

/** An agent class named `name`, answering `seen` with what its config and wiring look like. */
function classNamed(name: string): AgentClass {
  const cls = class extends Agent {
    seen(): Value {
      return { config: shape(this.env.config), wiring: shape(this.env.wiring) };
    }
  };
  Object.defineProperty(cls, "name", { value: name });
  return cls;
}

const NAMES = ["constructor", "toString", "hasOwnProperty", "__proto__"];

describe("a class named like an Object.prototype member", () => {
  const t = tempDir();
  after(() => t.remove());

  test("without an entry, gets {} as its config and wiring", async () => {
    const rt = testRuntime(path.join(t.dir, "none"), classNamed("Plain"), 1, {
      agentClasses: NAMES.map((name) => ({ pattern: `${name}-*`, agentClass: classNamed(name) })),
    });
    try {
      await rt.start();
      for (const name of NAMES) {
        assert.deepEqual(await rt.call(`${name}-1`, "seen", []), { ok: true, value: { config: [], wiring: [] } }, name);
      }
    } finally {
      await rt.shutdown();
    }
  });

  test("with an entry, gets that entry", async () => {
    const agentConfig: Record<string, Record<string, unknown>> = {};
    const agentWiring: Record<string, Record<string, unknown>> = {};
    for (const name of NAMES) {
      Object.defineProperty(agentConfig, name, { value: { option: 1 }, enumerable: true });
      Object.defineProperty(agentWiring, name, { value: { wired: 1 }, enumerable: true });
    }
    const rt = testRuntime(path.join(t.dir, "entry"), classNamed("Plain"), 2, {
      agentClasses: NAMES.map((name) => ({ pattern: `${name}-*`, agentClass: classNamed(name) })),
      agentConfig,
      agentWiring,
    });
    try {
      await rt.start();
      for (const name of NAMES) {
        const expected = { config: ["option"], wiring: ["wired"] };
        assert.deepEqual(await rt.call(`${name}-1`, "seen", []), { ok: true, value: expected }, name);
      }
    } finally {
      await rt.shutdown();
    }
  });

  test("commandObserverWiring gives a DeviceAgent class named __proto__ its own entry", () => {
    const cls = class extends DeviceAgent {};
    Object.defineProperty(cls, "name", { value: "__proto__" });
    const observer = () => {};
    const wiring = commandObserverWiring([cls], observer);
    assert.equal(Object.hasOwn(wiring, "__proto__"), true);
    assert.equal(Object.getPrototypeOf(wiring), Object.prototype, "the wiring object's prototype is left alone");
    assert.deepEqual(Object.getOwnPropertyDescriptor(wiring, "__proto__")?.value, { commandObserver: observer });
  });
});
