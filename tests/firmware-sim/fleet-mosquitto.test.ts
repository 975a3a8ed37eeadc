import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createFleet, seededRandom, verifierFromReader } from "../../firmware-sim/index.ts";
import { missingDebianPackage } from "../support/debian-package.ts";
import { FakeAgent } from "./helpers/fake-agent.ts";
import { startMosquitto } from "./helpers/mosquitto.ts";
import { runUntil } from "./helpers/wait.ts";

// The simulator is a device: it must work against any broker, so it also runs against mosquitto.
describe("fleet against mosquitto", () => {
  it("runs every profile with zero violations and survives takeover and network drops", async (t) => {
    const missing = missingDebianPackage("mosquitto", "mosquitto");
    if (missing) {
      t.skip(missing);
      return;
    }
    const mosquitto = await startMosquitto();
    const agent = new FakeAgent({ initialReportedVersion: 1 });
    try {
      await agent.connect(mosquitto.url);
      const fleet = createFleet({
        url: mosquitto.url,
        devices: 8,
        idPrefix: "mq-",
        profile: ["sensor", "thermostat", "constrained", "reasoning"],
        codec: "pb",
        rate: 20,
        takeoverPairs: 1,
        takeoverDelayMs: 200,
        networkDropMeanMs: 700,
        cleanSession: false,
        settleMs: 300,
        reasonIntervalMs: 150,
        random: seededRandom(5),
        backoff: { baseDelayMs: 30, maxDelayMs: 150 },
        verifyTelemetry: verifierFromReader(async (id) => agent.telemetry(id).map((seq) => ({ seq }))),
      });
      const report = await runUntil(
        fleet,
        (s) =>
          s.counters.serverCloses >= 1 &&
          s.counters.reasonFinished >= 2 &&
          s.counters.acksSent >= 8 &&
          s.counters.desiredFrames >= 2 &&
          s.counters.telemetryAcked > 50,
        "takeover, reasoning, commands, deltas and telemetry",
      );
      assert.deepEqual(report.violationDetails, []);
      const c = report.stats.counters;
      assert.ok(c.serverCloses >= 1, "mosquitto closed the taken-over session");
      assert.ok(c.reasonFinished >= 2 && c.acksSent >= 8 && c.desiredFrames >= 2, JSON.stringify(c));
      assert.ok(report.telemetryCheck.status === "checked" && report.telemetryCheck.ackedMessages > 50);
      assert.deepEqual(agent.errors, []);
    } finally {
      await agent.close();
      await mosquitto.close();
    }
  });
});
