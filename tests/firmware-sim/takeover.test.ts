import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createFleet, seededRandom } from "../../firmware-sim/index.ts";
import { runUntil } from "./helpers/wait.ts";
import { startAedes, type TestBroker } from "./helpers/aedes-broker.ts";

describe("client-id takeover", () => {
  let broker: TestBroker;
  before(async () => {
    broker = await startAedes();
  });
  after(async () => {
    await broker.close();
  });

  it("has the broker close the first device when its twin connects with the same client id, and both keep coming back", async () => {
    const fleet = createFleet({
      url: broker.url,
      devices: 2,
      idPrefix: "twin-",
      takeoverPairs: 1,
      takeoverDelayMs: 100,
      rate: 10,
      settleMs: 100,
      random: seededRandom(11),
      backoff: { baseDelayMs: 50, maxDelayMs: 100 },
    });
    const onlineCount = new Map<string, number>();
    const offlineReasons: string[] = [];
    fleet.events.on("online", (id) => onlineCount.set(id, (onlineCount.get(id) ?? 0) + 1));
    fleet.events.on("offline", (id, reason) => {
      if (id === "twin-1") offlineReasons.push(reason);
    });
    const report = await runUntil(
      fleet,
      (s) => s.counters.serverCloses >= 2 && (onlineCount.get("twin-1") ?? 0) >= 3,
      "the twins to kick each other",
    );
    const c = report.stats.counters;
    assert.ok(c.serverCloses >= 2, `server closes: ${c.serverCloses}`);
    assert.ok(offlineReasons.includes("remote"), "the broker, not the simulator, closed twin-1's connection");
    assert.ok((onlineCount.get("twin-1") ?? 0) >= 3, `twin-1 online ${onlineCount.get("twin-1")} times`);
    assert.equal(onlineCount.get("twin-2"), 1, "the device without a twin is never kicked");
    assert.equal(report.violations, 0);
  });

  it("refuses more takeover pairs than devices", () => {
    assert.throws(
      () => createFleet({ url: broker.url, devices: 2, takeoverPairs: 3 }),
      (err: unknown) =>
        err instanceof Error &&
        "code" in err &&
        err.code === "BRIDGE_ERR_SIM_OPTIONS" &&
        /takeoverPairs/.test(err.message),
    );
  });
});

describe("fleet lifecycle", () => {
  it("reports an empty run, stopped before it started, as failed with its reason, and refuses to start afterwards", async () => {
    const fleet = createFleet({ url: "mqtt://127.0.0.1:1", devices: 2 });
    const report = await fleet.stop();
    assert.equal(report.violations, 0);
    assert.equal(report.stats.started, 0);
    assert.equal(report.ok, false, "a run that checked nothing has not passed");
    assert.deepEqual(report.reasons, ["no device was powered on (0 of 2): the run stopped before its connection ramp"]);
    assert.ok(report.durationMs < 60_000);
    assert.equal(await fleet.stop(), report, "stop is idempotent");
    await assert.rejects(
      fleet.start(),
      (err: unknown) => err instanceof Error && "code" in err && err.code === "BRIDGE_ERR_SIM_STATE",
    );
  });
});
