/**
 * The constrained profile sends its readings by position through a metric alias table declared in every hello
 * (docs/protocol.md, "Metric aliases"); the real bridge stores them by name. When the agent loses the table, the
 * device says hello again and resends what was refused (docs/firmware-sim.md, "lost alias table").
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { createFleet, seededRandom, verifierFromReader } from "../../firmware-sim/index.ts";
import { getProfile } from "../../firmware-sim/profiles/index.ts";
import { telemetryReadings } from "../../firmware-sim/profiles/profile.ts";
import { createLoopbackBridge, provisionDevices } from "../support/in-process-bridge.ts";
import { startAliasLosingBroker } from "./helpers/alias-losing-broker.ts";
import { runUntil } from "./helpers/wait.ts";

describe("constrained firmware with metric aliases", () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sim-aliases-"));
  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it("sends aliased readings by position and the bookkeeping seq by name", () => {
    const constrained = getProfile("constrained");
    assert.deepEqual(constrained.metricAliases, ["v"]);
    assert.deepEqual(telemetryReadings(constrained, { seq: 5, v: 3100 }), { r: { seq: 5 }, rv: [3100] });
    assert.deepEqual(telemetryReadings(constrained, { v: 3100 }), { rv: [3100] });
    assert.deepEqual(telemetryReadings({ ...constrained, metricAliases: ["a", "b"] }, { b: 1 }), { rv: [null, 1] });
    const sensor = getProfile("sensor");
    assert.deepEqual(telemetryReadings(sensor, { seq: 1, temp: 20 }), { r: { seq: 1, temp: 20 } });
  });

  it("has its positional readings stored by metric name on the real bridge, with no alias errors", async () => {
    const bridge = await createLoopbackBridge({ dataDir, apiToken: "sim-aliases-token-0123456789abcdef" });
    try {
      const credentials = await provisionDevices(bridge, ["mcu-1", "mcu-2"], "cbor");
      const addresses = await bridge.start();
      const fleet = createFleet({
        url: `mqtt://127.0.0.1:${addresses.mqtt?.port}`,
        credentials,
        profile: "constrained",
        codec: "cbor",
        rate: 20,
        settleMs: 200,
        random: seededRandom(3),
      });
      void fleet.start();
      const started = Date.now();
      while (fleet.stats().counters.telemetryAcked < 10) {
        assert.ok(Date.now() - started < 20_000, "telemetry was acknowledged");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const report = await fleet.stop();
      assert.equal(report.stats.errorCodes.BRIDGE_ERR_TELEMETRY_ALIASES_UNKNOWN ?? 0, 0);
      for (const { id } of credentials) {
        const rows = await bridge.runtime.call(id, "queryTelemetry", [{ metric: "v", limit: 10 }]);
        assert.ok(rows.ok, rows.ok ? "" : rows.message);
        const values = rows.value as Array<{ metric: string; value: unknown }>;
        assert.ok(values.length > 0, `${id} has readings of v`);
        for (const row of values) assert.ok(typeof row.value === "number" && row.value >= 3000 && row.value < 3300);
      }
    } finally {
      await bridge.stop();
    }
  });

  it("says hello again when the agent lost its table, once per burst, and resends the refused readings", async () => {
    const broker = await startAliasLosingBroker({ forgetAfter: 5 });
    try {
      const fleet = createFleet({
        url: broker.url,
        devices: 2,
        profile: "constrained",
        codec: "cbor",
        rate: 50,
        settleMs: 100,
        random: seededRandom(5),
        verifyTelemetry: verifierFromReader(async (id) => broker.stored(id).map((seq) => ({ seq }))),
      });
      const report = await runUntil(fleet, (s) => s.counters.telemetryAcked >= 40, "telemetry after the loss");
      const c = report.stats.counters;
      let refused = 0;
      for (const id of fleet.deviceIds) {
        refused += broker.refused(id);
        assert.equal(broker.hellos(id), 2, `${id}: the hello of its connection and one more after the loss`);
        const stored = broker.stored(id);
        assert.ok(stored.length > 5 + broker.refused(id), `${id}: readings after the loss were stored`);
        assert.equal(new Set(stored).size, stored.length, `${id}: only the refused readings were sent again`);
      }
      assert.ok(refused >= 2, "each device had at least one frame refused");
      assert.equal(report.stats.errorCodes.BRIDGE_ERR_TELEMETRY_ALIASES_UNKNOWN, refused);
      assert.equal(c.aliasHellos, 2, "one hello per device and burst, not one per refused frame");
      assert.equal(c.telemetryResent, refused);
      assert.deepEqual(report.violationCounts, {});
      assert.equal(report.telemetryCheck.status, "checked");
      if (report.telemetryCheck.status === "checked") assert.equal(report.telemetryCheck.missingMessages, 0);
    } finally {
      await broker.close();
    }
  });
});
