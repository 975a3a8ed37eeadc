/** DeviceAgent: the app can watch command state transitions through `env.config` (for its metrics). */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { Agent } from "../../agents/agent.ts";
import {
  type CommandRecord,
  type CommandTransition,
  DeviceAgent,
  withCommandObserver,
} from "../../agents/device/index.ts";
import type { ValueMap } from "../../codecs/frames.ts";
import { DeviceHarness } from "./device-harness.ts";

const harnesses: DeviceHarness[] = [];
after(async () => {
  for (const h of harnesses) await h.dispose();
});

class Thermostat extends DeviceAgent {}
class Plain extends Agent<ValueMap> {}

test("withCommandObserver adds the observer to DeviceAgent classes and subclasses only, keeping their options", () => {
  const observer = (): void => {};
  const config = withCommandObserver(
    { Thermostat: { telemetryMaxRows: 10 }, Plain: { x: 1 } },
    [DeviceAgent, Thermostat, Plain],
    DeviceAgent,
    observer,
  );
  assert.equal(config.DeviceAgent.commandObserver, observer);
  assert.deepEqual(config.Thermostat, { telemetryMaxRows: 10, commandObserver: observer });
  assert.deepEqual(config.Plain, { x: 1 }, "a class that is not a DeviceAgent is left alone");
});

test("every command state transition reaches the observer: QUEUED, SENT on delivery, SUCCEEDED or FAILED on the ack, EXPIRED at the TTL, never a redelivery", async () => {
  const seen: CommandTransition[] = [];
  const h = new DeviceHarness({
    agentClass: Thermostat,
    agentConfig: withCommandObserver({ Thermostat: { telemetryMaxRows: 100 } }, [Thermostat], DeviceAgent, (t) =>
      seen.push(t),
    ),
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
    agentConfig: withCommandObserver({}, [DeviceAgent], DeviceAgent, () => {
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
