import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { describe, it } from "node:test";
import { Aedes } from "aedes";
import { createFleet } from "../../firmware-sim/index.ts";
import { missingDebianPackage } from "../support/debian-package.ts";
import { makeSelfSignedCert } from "../support/self-signed-cert.ts";
import { runUntil } from "./helpers/wait.ts";

describe("fleet over TLS", () => {
  it("connects with mqtts:// and verifies the broker against the given CA", async (t) => {
    const missing = missingDebianPackage("openssl", "openssl");
    if (missing) {
      t.skip(missing);
      return;
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-sim-tls-"));
    const { certFile: cert, keyFile: key, made } = makeSelfSignedCert(dir, "localhost", "IP:127.0.0.1");
    assert.ok(made, "openssl made a certificate");
    const broker = await Aedes.createBroker();
    const server = tls.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, broker.handle);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const fleet = createFleet({
        url: `mqtts://127.0.0.1:${port}`,
        devices: 3,
        idPrefix: "tls-",
        rate: 20,
        settleMs: 0,
        tls: { ca: fs.readFileSync(cert) },
      });
      const report = await runUntil(fleet, (s) => s.counters.telemetryAcked >= 6, "telemetry over TLS");
      assert.equal(report.violations, 0);

      const untrusting = createFleet({
        url: `mqtts://127.0.0.1:${port}`,
        devices: 1,
        idPrefix: "tls-x-",
        settleMs: 0,
        drainTimeoutMs: 0,
      });
      const refused = await runUntil(untrusting, (s) => s.counters.connectErrors >= 1, "a failed handshake");
      assert.equal(
        refused.violationCounts["device-never-connected"],
        1,
        "without the CA the self-signed broker is refused",
      );
    } finally {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
