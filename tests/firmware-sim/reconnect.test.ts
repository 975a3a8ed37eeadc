import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createFleet, seededRandom } from "../../firmware-sim/index.ts";
import { runUntil } from "./helpers/wait.ts";
import { startAedes, type TestBroker } from "./helpers/aedes-broker.ts";

// A broker that refuses every device: what differs is only how fast firmware comes back.
describe("reconnect behaviour against a refusing broker", () => {
  let broker: TestBroker;
  before(async () => {
    broker = await startAedes({
      authenticate: (_client, _username, _password, done) => {
        const error = Object.assign(new Error("not authorized"), { returnCode: 5 });
        done(error, false);
      },
    });
  });
  after(async () => {
    await broker.close();
  });

  it("hammers the broker in the broken zero-delay mode (a reconnect storm)", async () => {
    const fleet = createFleet({
      url: broker.url,
      devices: 1,
      idPrefix: "storm-",
      backoff: { mode: "zero" },
      settleMs: 0,
      drainTimeoutMs: 0,
    });
    // Stop once ten refusals arrived, not ten attempts: the tenth attempt's refusal may still be on its way when
    // the tenth attempt is counted, and the refusal count is what is asserted below.
    const report = await runUntil(fleet, (s) => s.counters.connectRefused >= 10, "ten refusals without delay", 10_000);
    const c = report.stats.counters;
    assert.ok(c.connectAttempts >= 10, `attempts in the storm: ${c.connectAttempts}`);
    // Every attempt but possibly the one cut short by stop() got its refusal.
    assert.ok(c.connectRefused >= c.connectAttempts - 1, JSON.stringify(c));
    assert.ok(report.stats.refusalCodes["5"] >= 10, JSON.stringify(report.stats.refusalCodes));
    assert.equal(report.violationCounts["device-never-connected"], 1);
  });

  it("backs off with jitter so a refused device retries only a few times", async () => {
    // With seededRandom(9) the first retry comes after about 140 ms (window 1 s), the next about 1.6 s after that (window 2 s): two attempts in the first second.
    const fleet = createFleet({
      url: broker.url,
      devices: 1,
      idPrefix: "calm-",
      backoff: { baseDelayMs: 1000, maxDelayMs: 30_000 },
      random: seededRandom(9),
      settleMs: 0,
      drainTimeoutMs: 0,
    });
    const report = await fleet.run(1000);
    const c = report.stats.counters;
    assert.ok(c.connectAttempts >= 1 && c.connectAttempts <= 2, `attempts with backoff: ${c.connectAttempts}`);
    assert.equal(c.connectRefused, c.connectAttempts);
  });
});
