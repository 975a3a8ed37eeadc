/** DeviceAgent: the app can watch command state transitions through what it wires in (`env.wiring`, for its metrics). */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { pino } from "pino";
import { Agent } from "../../agents/agent.ts";
import {
  type CommandObserver,
  type CommandRecord,
  type CommandTransition,
  commandObserverWiring,
  DeviceAgent,
} from "../../agents/device/index.ts";
import { createRuntime } from "../../agents/runtime.ts";
import type { AgentWiring } from "../../agents/types.ts";
import type { ValueMap } from "../../codecs/frames.ts";
import { BridgeError } from "../../errors/index.ts";
import { DeviceHarness } from "./device-harness.ts";

const harnesses: DeviceHarness[] = [];
after(async () => {
  for (const h of harnesses) await h.dispose();
});

class Thermostat extends DeviceAgent {}
class Plain extends Agent<ValueMap> {}

test("commandObserverWiring wires the observer into DeviceAgent classes and subclasses only", () => {
  const observer = (): void => {};
  const wiring = commandObserverWiring([DeviceAgent, Thermostat, Plain], observer);
  assert.deepEqual(wiring, { DeviceAgent: { commandObserver: observer }, Thermostat: { commandObserver: observer } });
});

test("every command state transition reaches the observer: QUEUED, SENT on delivery, SUCCEEDED or FAILED on the ack, EXPIRED at the TTL, never a redelivery", async () => {
  const seen: CommandTransition[] = [];
  const h = new DeviceHarness({
    agentClass: Thermostat,
    agentConfig: { Thermostat: { telemetryMaxRows: 100 } },
    agentWiring: commandObserverWiring([Thermostat], (t) => seen.push(t)),
  });
  harnesses.push(h);
  const dev = await h.open("obs-1");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0" } });
  const a = await h.call<CommandRecord>("obs-1", "sendCommand", { name: "open" });
  const b = await h.call<CommandRecord>("obs-1", "sendCommand", { name: "close" });
  await h.send(dev, { channel: "ack", frame: { id: a.id, ok: true } });
  await h.send(dev, { channel: "ack", frame: { id: a.id, ok: true } });
  await h.send(dev, { channel: "ack", frame: { id: b.id, ok: false, err: "jammed" } });
  await h.close(dev);
  const c = await h.call<CommandRecord>("obs-1", "sendCommand", { name: "reboot", ttlSeconds: 5 });
  const again = await h.open("obs-1");
  await h.send(again, { channel: "hello", frame: { fw: "1.0" } });
  const reconnect = await h.open("obs-1");
  await h.send(reconnect, { channel: "hello", frame: { fw: "1.0" } });
  await h.clock.advance(6000);
  const states = (id: string) => seen.filter((t) => t.commandId === id).map((t) => [t.from, t.state]);
  assert.deepEqual(states(a.id), [
    [null, "QUEUED"],
    ["QUEUED", "SENT"],
    ["SENT", "SUCCEEDED"],
  ]);
  assert.deepEqual(states(b.id), [
    [null, "QUEUED"],
    ["QUEUED", "SENT"],
    ["SENT", "FAILED"],
  ]);
  assert.deepEqual(
    states(c.id),
    [
      [null, "QUEUED"],
      ["QUEUED", "SENT"],
      ["SENT", "EXPIRED"],
    ],
    "the redelivery to the second session is not a transition",
  );
  assert.ok(seen.every((t) => t.agentId === "obs-1"));
  assert.equal((await h.call<CommandRecord>("obs-1", "getCommand", c.id)).attempts, 2);
});

test("an observer that throws does not fail the command", async () => {
  const h = new DeviceHarness({
    agentWiring: commandObserverWiring([DeviceAgent], () => {
      throw new Error("metrics down");
    }),
  });
  harnesses.push(h);
  const dev = await h.open("obs-2");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0" } });
  const cmd = await h.call<CommandRecord>("obs-2", "sendCommand", { name: "open" });
  assert.equal(cmd.state, "SENT");
  await h.send(dev, { channel: "ack", frame: { id: cmd.id, ok: true } });
  assert.equal((await h.call<CommandRecord>("obs-2", "getCommand", cmd.id)).state, "SUCCEEDED");
});

/** What createRuntime threw for `agentConfig` and `agentWiring` on DeviceAgent, checked to be a BridgeError. */
function refusal(options: {
  agentConfig?: Record<string, Record<string, unknown>>;
  agentWiring?: Record<string, AgentWiring>;
}): BridgeError {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "device-observer-refused-"));
  try {
    createRuntime({ dataDir, defaultAgentClass: DeviceAgent, logger: pino({ level: "silent" }), ...options });
  } catch (err) {
    assert.ok(err instanceof BridgeError, `a BridgeError, not ${String(err)}`);
    return err;
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  assert.fail("createRuntime accepted the options");
}

test("a command observer passed in agentConfig (the form before agentWiring) is refused with where it goes now", () => {
  const observer: CommandObserver = () => {};
  const err = refusal({ agentConfig: { DeviceAgent: { commandObserver: observer } } });
  assert.equal(err.code, "BRIDGE_ERR_CONFIG");
  assert.equal(err.details.field, "agentConfig.DeviceAgent.commandObserver");
  assert.match(String(err.details.rule), /^is wired in, not an option: pass it in createRuntime's agentWiring/);
  assert.match(err.message, /commandObserverWiring/);
  assert.throws(
    () => DeviceAgent.validateConfig({ commandObserver: observer }),
    (e: unknown) => e instanceof BridgeError && e.details.field === "commandObserver",
    "the class's own check refuses it too, as the bridge's start asks it",
  );
});

test("DeviceAgent refuses wiring it does not take: a misspelt key, or an observer that is not a function", () => {
  const misspelt = refusal({ agentWiring: { DeviceAgent: { comandObserver: () => {} } } });
  assert.equal(misspelt.code, "BRIDGE_ERR_CONFIG");
  assert.equal(misspelt.details.field, "agentWiring.DeviceAgent.comandObserver");
  assert.match(String(misspelt.details.rule), /is not something DeviceAgent is wired with \(commandObserver\)/);
  const notFunction = refusal({ agentWiring: { DeviceAgent: { commandObserver: "metrics" } } });
  assert.equal(notFunction.details.field, "agentWiring.DeviceAgent.commandObserver");
  assert.equal(notFunction.details.rule, "must be a function");
});

test("the observer is not among the agent's options: env.config holds what was configured, env.wiring the observer", async () => {
  const observer: CommandObserver = () => {};
  class Inspecting extends DeviceAgent {
    envKeys(): ValueMap {
      return { config: Object.keys(this.env.config), wiring: Object.keys(this.env.wiring) };
    }
  }
  const h = new DeviceHarness({
    agentClass: Inspecting,
    agentConfig: { Inspecting: { telemetryMaxRows: 100 } },
    agentWiring: commandObserverWiring([Inspecting], observer),
  });
  harnesses.push(h);
  assert.deepEqual(await h.call("env-1", "envKeys"), { config: ["telemetryMaxRows"], wiring: ["commandObserver"] });
});
