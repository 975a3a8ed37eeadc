/**
 * A simulated fleet against the real bridge: 200 provisioned devices, the bridge running as a user starts it (a child
 * process, with the engine simulator as its engine), and two fleets (CBOR and protobuf, all four firmware profiles
 * each) running for a few seconds while the operator API sends commands and desired-state changes. Everything
 * acknowledged is read back through the API; no device may see JSON on the wire.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import { REGISTRY_FILE } from "../../app/bridge/layout.ts";
import { createDeviceRegistry } from "../../broker/registry/index.ts";
import { createFleet, type DeviceCredential, type FleetReport } from "../../firmware-sim/index.ts";
import { type BridgeProcess, makeTempDir, startBridgeProcess, TEST_API_TOKEN } from "./support/bridge-process.ts";

const DEVICES = 200;
/**
 * Traffic after every device is online. The ramp before it is what takes time: 40 to 90 s for the whole test on this
 * shared 2-core machine under load (about 7 to 11 new devices a second), hence the longer test timeout.
 */
const RUN_MS = 3000;

describe("a 200-device fleet against the real bridge", () => {
  const dataDir = makeTempDir("e2e-fleet-");
  let engine: Awaited<ReturnType<typeof startEngineSimulator>>;
  let bridge: BridgeProcess | undefined;

  before(async () => {
    engine = await startEngineSimulator({ host: "127.0.0.1", port: 0 });
  });
  after(async () => {
    if (bridge !== undefined) await bridge.stop();
    await engine.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test("keeps every invariant with commands and desired-state changes driven through the API, and sends no JSON to binary devices", {
    timeout: 180_000,
  }, async () => {
    // Provisioned straight into the registry file with a cheap scrypt cost: the bridge verifies each secret with the
    // parameters stored in its hash, so 200 logins cost milliseconds instead of seconds of this 2-core machine.
    // (The CLI's own `devices add --count` is covered by devices-batch.test.ts.)
    const registry = createDeviceRegistry({
      path: path.join(dataDir, REGISTRY_FILE),
      scrypt: { N: 1024, r: 8, p: 1 },
    });
    const credentials: DeviceCredential[] = [];
    try {
      for (let i = 1; i <= DEVICES; i++) {
        const result = await registry.add(`fl-${String(i).padStart(3, "0")}`);
        assert.equal(result.status, "created");
        if (result.status === "created") credentials.push({ id: result.device.id, secret: result.secret });
      }
    } finally {
      registry.close();
    }

    bridge = await startBridgeProcess({ dataDir, args: ["--engine-url", engine.url] });
    const apiUrl = `http://127.0.0.1:${bridge.httpPort}`;
    const profiles = ["sensor", "thermostat", "constrained", "reasoning"] as const;
    const half = DEVICES / 2;
    const fleets = (["cbor", "pb"] as const).map((codec, i) =>
      createFleet({
        url: `mqtt://127.0.0.1:${bridge?.mqttPort}`,
        credentials: credentials.slice(i * half, (i + 1) * half),
        codec,
        profile: [...profiles],
        rate: 1,
        connectRatePerSec: 100,
        reasonIntervalMs: 1000,
        settleMs: 1500,
        verifyTelemetry: { apiUrl, token: TEST_API_TOKEN },
        verifyCommands: { apiUrl, token: TEST_API_TOKEN },
        driveApi: { apiUrl, token: TEST_API_TOKEN, commandsPerMin: 12, desiredPerMin: 12, concurrency: 4 },
      }),
    );
    let reports: FleetReport[];
    try {
      await Promise.all(fleets.map((f) => f.start()));
      const online = await Promise.all(fleets.map((f) => f.whenOnline(half, 60_000)));
      assert.deepEqual(
        online,
        [true, true],
        `every device came online: ${JSON.stringify(fleets.map((f) => f.stats().online))}`,
      );
      await new Promise((r) => setTimeout(r, RUN_MS));
    } finally {
      reports = await Promise.all(fleets.map((f) => f.stop()));
    }

    for (const [i, report] of reports.entries()) {
      const name = i === 0 ? "cbor" : "pb";
      const details = JSON.stringify(report.violationDetails.slice(0, 10));
      assert.equal(report.violations, 0, `${name} fleet: ${JSON.stringify(report.violationCounts)} ${details}`);
      assert.equal(report.violationCounts["json-to-binary-device"], undefined);
      const c = report.stats.counters;
      assert.ok(c.telemetryAcked > 0, `${name}: telemetry was acknowledged`);
      assert.ok(c.reasonFinished > 0, `${name}: reasoning answers arrived`);
      assert.ok(c.commandsReceived > 0, `${name}: commands reached devices`);
      assert.ok(c.desiredFrames > 0, `${name}: desired-state deltas reached thermostats`);
      // A healthy engine and a bridge under no fault: every question ends in an answer (at most one per device still
      // open when the fleet stopped), no device is refused or sees a channel the protocol lacks, the simulator never
      // threw, and the only error frames are the shadow's version check.
      const faults = [c.reasonErrors, c.reasonTimedOut, c.connectRefused, c.unknownDownChannel];
      assert.deepEqual(faults, [0, 0, 0, 0], `${name}: ${JSON.stringify(c)}`);
      assert.ok(c.reasonAsked - c.reasonFinished <= half, `${name}: ${c.reasonAsked} asked, ${c.reasonFinished} done`);
      assert.deepEqual(report.simulatorErrors, []);
      const unexpected = Object.keys(report.stats.errorCodes).filter((code) => code !== "BRIDGE_ERR_STALE_VERSION");
      assert.deepEqual(unexpected, [], `${name}: error frames ${JSON.stringify(report.stats.errorCodes)}`);
      assert.equal(report.telemetryCheck.status, "checked");
      assert.ok(report.telemetryCheck.status === "checked" && report.telemetryCheck.missingMessages === 0);
      assert.ok(report.commandCheck.status === "checked" && report.commandCheck.commands > 0);
      const drive = report.apiDrive;
      assert.ok(drive !== undefined && drive.commandsIssued > 0 && drive.desiredIssued > 0, JSON.stringify(drive));
      assert.ok(drive.shadowsChecked > 0 && drive.notConverged === 0 && drive.refused === 0, JSON.stringify(drive));
    }
    assert.equal(await bridge.stop(), 0, "the bridge stops cleanly after the run");
    bridge = undefined;
  });
});
