/**
 * A simulated JSON thermostat served by an agent that keeps a state of its own (`setState`). The runtime broadcasts
 * that state on `down/state` as `{v: 0, d: state, full: true}`, the same shape as the shadow's full desired state;
 * the device must tell the two apart (docs/protocol.md, "Desired state or agent state on down/state") and keep its
 * desired-state view, and its reported state, free of the agent's state.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { DeviceAgent } from "../../agents/index.ts";
import { DEFAULT_BACKOFF } from "../../firmware-sim/backoff.ts";
import { systemClock } from "../../firmware-sim/clock.ts";
import type { DeviceEnv } from "../../firmware-sim/device/device-env.ts";
import { VirtualDevice } from "../../firmware-sim/device/virtual-device.ts";
import { ViolationLog } from "../../firmware-sim/invariants/violations.ts";
import { defaultSocketFactory } from "../../firmware-sim/mqtt/lean-connection.ts";
import { getProfile } from "../../firmware-sim/profiles/index.ts";
import { seededFleetRandom } from "../../firmware-sim/random-streams.ts";
import { TickScheduler } from "../../firmware-sim/scheduler.ts";
import { FleetMetrics } from "../../firmware-sim/stats.ts";
import { type RuntimeBroker, startRuntimeBroker } from "../broker/runtime-broker.ts";
import { waitUntil } from "./helpers/wait.ts";

/** An agent that shows a note on its device's panel: the note lives in the agent's own (runtime) state. */
class NotePanel extends DeviceAgent {
  showNote(text: unknown): boolean {
    // `mode` is also a field of the thermostat's reported state: taken for desired state, it would be "applied".
    this.setState({ note: String(text), mode: "cool" });
    return true;
  }
}

interface SimulatedDevice {
  device: VirtualDevice;
  metrics: FleetMetrics;
  violations: ViolationLog;
  online: Promise<void>;
  close(): void;
}

/** One simulated device with the fleet's defaults, no telemetry, on the real clock and sockets. */
function simulatedThermostat(port: number, id: string, secret: string): SimulatedDevice {
  const scheduler = new TickScheduler(systemClock);
  const metrics = new FleetMetrics();
  const violations = new ViolationLog();
  let markOnline: () => void = () => {};
  const online = new Promise<void>((resolve) => {
    markOnline = resolve;
  });
  const env: DeviceEnv = {
    clock: systemClock,
    scheduler,
    random: seededFleetRandom(7).device(0),
    metrics,
    violations,
    behaviour: {
      telemetryIntervalMs: 0,
      backoff: DEFAULT_BACKOFF,
      offlineBufferSize: 100,
      maxInflight: 16,
      cleanSession: true,
      brokerSetsDup: true,
      keepaliveSec: 60,
      connectTimeoutMs: 10_000,
      duplicateRatio: 0,
      networkDropMeanMs: 0,
      lastWillTopic: undefined,
      reasonIntervalMs: 5000,
      reasonTimeoutMs: 60_000,
      reasonMaxTokens: 64,
    },
    target: { host: "127.0.0.1", port, tls: false },
    socketFactory: defaultSocketFactory,
    localAddress: () => undefined,
    listener: { online: () => markOnline(), offline: () => {} },
    handlerFailed: (err) => {
      throw err;
    },
  };
  const device = new VirtualDevice(
    {
      id,
      secret,
      profile: getProfile("thermostat"),
      codec: "json",
      seqBase: 0,
      skewMs: 0,
      hasClock: true,
      twin: false,
    },
    env,
  );
  return {
    device,
    metrics,
    violations,
    online,
    close() {
      device.shutdown();
      scheduler.close();
    },
  };
}

describe("a simulated JSON device whose agent sets its own state", () => {
  let rb: RuntimeBroker;
  let sim: SimulatedDevice | undefined;
  before(async () => {
    rb = await startRuntimeBroker({ agentClass: NotePanel });
  });
  after(async () => {
    sim?.close();
    await rb.close();
  });

  test("keeps the agent's state broadcast out of its desired state and never reports it as its own", async () => {
    const id = "panel-1";
    sim = simulatedThermostat(rb.port, id, await rb.addDevice(id, "json"));
    const { device, metrics } = sim;
    const shadow = device.shadow;
    assert.ok(shadow !== undefined, "a thermostat keeps a shadow");
    device.powerOn();
    await sim.online;

    const desired = await rb.runtime.call(id, "setDesired", [{ target: 23 }]);
    assert.deepEqual(desired, { ok: true, value: { status: "ok", version: 1 } });
    await waitUntil(
      () => shadow.desired?.target === 23 && shadow.convergence().status === "converged",
      "the desired target to be applied and its report acknowledged",
    );
    const reportsBefore = metrics.counters.stateReports;
    const downBefore = metrics.counters.downReceived;

    const shown = await rb.runtime.call(id, "showNote", ["defrosting"]);
    assert.deepEqual(shown, { ok: true, value: true });
    await waitUntil(() => metrics.counters.downReceived > downBefore, "the agent's state broadcast to arrive");
    assert.equal(metrics.counters.agentStateFrames, 1, "the broadcast was read as the agent's state");
    assert.deepEqual(shadow.desired, { target: 23 }, "the desired state is still the shadow's");
    assert.equal(metrics.counters.stateReports, reportsBefore, "nothing was applied, so nothing was reported");
    assert.deepEqual(shadow.reported, { mode: "heat", target: 23 });

    // The next delta builds on the desired state the device really had.
    await rb.runtime.call(id, "setDesired", [{ target: 24 }]);
    await waitUntil(
      () => shadow.desired?.target === 24 && shadow.convergence().status === "converged",
      "the second desired target to be applied and its report acknowledged",
    );
    assert.deepEqual(shadow.desired, { target: 24 });
    const onBridge = await rb.runtime.call(id, "getShadow", []);
    assert.ok(onBridge.ok);
    const doc = onBridge.value as { reported: { state: unknown }; delta: unknown };
    assert.deepEqual(doc.reported.state, { mode: "heat", target: 24 }, "the bridge's reported state holds no note");
    assert.deepEqual(doc.delta, {});
    assert.equal(sim.violations.total, 0);
  });
});
