import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createFleet, seededRandom, verifierFromReader } from "../../firmware-sim/index.ts";
import { runUntil } from "./helpers/wait.ts";
import { startAedes, type TestBroker } from "./helpers/aedes-broker.ts";
import { FakeAgent, type FakeAgentOptions } from "./helpers/fake-agent.ts";

// Short runs against a plain aedes broker with a stand-in agent: the simulator is only a device here.
describe("fleet against a plain aedes broker", () => {
  let broker: TestBroker;
  before(async () => {
    broker = await startAedes();
  });
  after(async () => {
    await broker.close();
  });

  async function withAgent<T>(options: FakeAgentOptions, fn: (agent: FakeAgent) => Promise<T>): Promise<T> {
    const agent = new FakeAgent(options);
    await agent.connect(broker.url);
    try {
      return await fn(agent);
    } finally {
      await agent.close();
    }
  }

  const fast = { rate: 20, settleMs: 300, reasonIntervalMs: 150, backoff: { baseDelayMs: 20, maxDelayMs: 200 } };

  it("runs every profile with zero violations, obeying deltas and commands and finishing reasoning streams", async () => {
    await withAgent({ initialReportedVersion: 2 }, async (agent) => {
      const fleet = createFleet({
        url: broker.url,
        devices: 8,
        idPrefix: "all-",
        profile: ["sensor", "thermostat", "constrained", "reasoning"],
        random: seededRandom(1),
        verifyTelemetry: verifierFromReader(async (id) => agent.telemetry(id).map((seq) => ({ seq }))),
        // The stand-in agent "records" a command when it has seen its ack.
        verifyCommands: async (id, acked) => ({
          status: "read",
          unrecorded: acked
            .filter((c) => !agent.devices.get(id)?.acks.has(c.id))
            .map((c) => ({ id: c.id, state: "SENT" })),
        }),
        ...fast,
      });
      const report = await runUntil(
        fleet,
        (s) =>
          s.counters.telemetryAcked > 50 &&
          s.counters.commandsRedelivered >= 2 &&
          s.counters.staleStateErrors >= 2 &&
          s.counters.reasonFinished >= 4,
        "deltas, commands and reasoning answers",
      );
      assert.deepEqual(report.violationDetails, []);
      assert.equal(report.ok, true);
      assert.equal(report.violations, 0);
      const c = report.stats.counters;
      assert.equal(report.telemetryCheck.status, "checked");
      if (report.telemetryCheck.status === "checked") {
        assert.equal(report.telemetryCheck.devices, 8);
        assert.equal(report.telemetryCheck.missingMessages, 0);
        assert.equal(report.telemetryCheck.ackedMessages, c.telemetryAcked);
      }
      assert.ok(c.telemetryAcked > 50, `telemetry acked: ${c.telemetryAcked}`);
      assert.ok(report.commandCheck.status === "checked" && report.commandCheck.commands >= 8 + 2);
      assert.equal(report.commandCheck.unrecorded, 0);
      assert.ok(report.pubackLatency.count > 0 && report.pubackLatency.p99Ms >= report.pubackLatency.p50Ms);
      assert.ok(c.commandsRedelivered >= 2, "the thermostats saw their set command twice");
      assert.ok(c.staleStateErrors >= 2, "each thermostat recovered from a stale base version");
      assert.ok(c.reasonFinished >= 4, `reasoning finished: ${c.reasonFinished}`);
      assert.deepEqual(agent.errors, []);
      for (const id of fleet.deviceIds) {
        const record = agent.devices.get(id);
        assert.ok(record, `${id} said hello`);
        for (const [cmd, count] of record.acks) assert.ok(count >= 1, `${cmd} acked`);
        assert.ok(record.acks.has(`${id}-ping`), `${id} acked its ping`);
        for (const [key, value] of Object.entries(record.desired)) {
          assert.deepEqual(record.reported[key], value, `${id}: agent sees reported ${key} converged`);
        }
      }
    });
  });

  it("flags every JSON text frame sent to a binary device", async () => {
    await withAgent({ jsonToBinary: true }, async () => {
      const fleet = createFleet({
        url: broker.url,
        devices: 4,
        idPrefix: "bin-",
        profile: ["constrained", "sensor"],
        codec: "pb",
        ...fast,
      });
      const report = await runUntil(fleet, (s) => s.violations >= 4, "a violation per device");
      assert.equal(report.ok, false);
      assert.equal(report.violationCounts["json-to-binary-device"], 4);
      assert.ok(report.violationDetails.every((v) => v.kind === "json-to-binary-device"));
    });
  });

  it("flags a down frame the device cannot decode in its own codec", async () => {
    await withAgent({ cborToAll: true }, async () => {
      const fleet = createFleet({
        url: broker.url,
        devices: 2,
        idPrefix: "pbdev-",
        profile: "sensor",
        codec: "pb",
        ...fast,
      });
      const report = await runUntil(fleet, (s) => s.violations >= 2, "a violation per device");
      assert.equal(report.violationCounts["undecodable-down-frame"], 2);
      assert.match(report.violationDetails[0]?.message ?? "", /down\/cmd: BRIDGE_ERR_FRAME_DECODE .* bytes: a[0-9a-f]/);
    });
  });

  it("reports command acks the bridge did not record", async () => {
    await withAgent({}, async () => {
      const fleet = createFleet({
        url: broker.url,
        devices: 2,
        idPrefix: "unrec-",
        verifyCommands: async (_id, acked) => ({
          status: "read",
          unrecorded: acked.map((c) => ({ id: c.id, state: "SENT" })),
        }),
        ...fast,
      });
      const report = await runUntil(fleet, (s) => s.counters.acksSent >= 2, "the ping commands acked");
      assert.equal(report.violationCounts["command-ack-unrecorded"], 2);
      assert.match(report.violationDetails[0]?.message ?? "", /command unrec-\d-ping: ack acknowledged, still SENT/);
    });
  });

  it("reports acknowledged telemetry that cannot be read back", async () => {
    await withAgent({ loseEveryNth: 7 }, async (agent) => {
      const fleet = createFleet({
        url: broker.url,
        devices: 3,
        idPrefix: "lost-",
        verifyTelemetry: verifierFromReader(async (id) => agent.telemetry(id).map((seq) => ({ seq }))),
        ...fast,
      });
      const report = await runUntil(fleet, (s) => s.counters.telemetryAcked >= 40, "some telemetry");
      assert.equal(report.ok, false);
      assert.ok((report.violationCounts["telemetry-lost"] ?? 0) >= 1);
      const check = report.telemetryCheck;
      assert.ok(check.status === "checked");
      // About one in seven was forgotten by the agent: the check must find those, and only those.
      assert.ok(check.missingMessages > 0 && check.missingMessages < check.ackedMessages / 3, JSON.stringify(check));
    });
  });

  it("flags partial reasoning chunks sent to a device that asked for stream:false", async () => {
    await withAgent({ ignoreStreamFlag: true }, async () => {
      const fleet = createFleet({
        url: broker.url,
        devices: 2,
        idPrefix: "nostream-",
        profile: "constrained",
        ...fast,
      });
      const report = await runUntil(fleet, (s) => s.violations >= 1, "a partial chunk");
      assert.ok((report.violationCounts["stream-to-non-streaming-device"] ?? 0) >= 1);
    });
  });

  it("buffers through network drops, replays with DUP on persistent sessions and loses nothing acknowledged", async () => {
    await withAgent({}, async (agent) => {
      const fleet = createFleet({
        url: broker.url,
        devices: 4,
        idPrefix: "flaky-",
        rate: 50,
        networkDropMeanMs: 150,
        cleanSession: false,
        // Plain aedes resends a persistent session's frames without DUP.
        brokerSetsDup: false,
        duplicateRatio: 0.2,
        lastWillTopic: "devices/{id}/up/status",
        random: seededRandom(7),
        settleMs: 200,
        backoff: { baseDelayMs: 30, maxDelayMs: 100 },
        verifyTelemetry: verifierFromReader(async (id) => agent.telemetry(id).map((seq) => ({ seq }))),
      });
      const report = await runUntil(
        fleet,
        (s) =>
          s.counters.networkDrops >= 4 && s.counters.buffered > 0 && s.counters.duplicatesSent > 0 && agent.wills >= 1,
        "drops, buffering, duplicates and a last will",
      );
      const c = report.stats.counters;
      assert.deepEqual(report.violationDetails, []);
      assert.ok(c.networkDrops >= 4, `drops: ${c.networkDrops}`);
      assert.ok(agent.wills >= 1, "the broker published last wills for dropped devices");
      assert.ok(c.buffered > 0, "messages were produced while offline");
      assert.ok(c.duplicatesSent > 0);
      assert.equal(c.telemetryAcked, c.telemetrySent - c.bufferDropped);
      assert.ok(report.telemetryCheck.status === "checked" && report.telemetryCheck.missingMessages === 0);
    });
  });

  it("drops the oldest messages when the offline buffer overflows, without counting them as lost", async () => {
    await withAgent({}, async (agent) => {
      const fleet = createFleet({
        url: broker.url,
        devices: 2,
        idPrefix: "tiny-",
        rate: 200,
        offlineBufferSize: 2,
        maxInflight: 1,
        networkDropMeanMs: 100,
        random: seededRandom(3),
        settleMs: 100,
        backoff: { baseDelayMs: 100, maxDelayMs: 200 },
        verifyTelemetry: verifierFromReader(async (id) => agent.telemetry(id).map((seq) => ({ seq }))),
      });
      const report = await runUntil(fleet, (s) => s.counters.bufferDropped > 0, "the tiny buffer to overflow");
      assert.ok(report.stats.counters.bufferDropped > 0, "the tiny buffer overflowed");
      assert.deepEqual(report.violationDetails, []);
    });
  });
});

describe("device clocks", () => {
  let broker: TestBroker;
  before(async () => {
    broker = await startAedes();
  });
  after(async () => {
    await broker.close();
  });

  it("sends no ts from devices without a clock and skewed ts from the others", async () => {
    const agent = new FakeAgent();
    await agent.connect(broker.url);
    try {
      const fleet = createFleet({
        url: broker.url,
        devices: 6,
        idPrefix: "clock-",
        rate: 20,
        noClockRatio: 0.5,
        clockSkewMs: 3_600_000,
        random: seededRandom(2),
        settleMs: 50,
      });
      const report = await runUntil(
        fleet,
        () => agent.withoutTs > 0 && agent.tsOffsetsMs.length > 0,
        "telemetry with and without ts",
      );
      assert.equal(report.violations, 0);
      assert.ok(agent.withoutTs > 0, "some devices have no clock");
      assert.ok(agent.tsOffsetsMs.length > 0, "some devices have one");
      assert.ok(
        agent.tsOffsetsMs.some((offset) => Math.abs(offset) > 60_000),
        "their clocks are off by minutes",
      );
    } finally {
      await agent.close();
    }
  });
});
