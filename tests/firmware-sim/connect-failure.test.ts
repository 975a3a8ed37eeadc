/** A connection attempt that cannot even start (the transport throws) fails like any other and is retried. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { createFleet, seededRandom } from "../../firmware-sim/index.ts";
import { acknowledge, scriptedSocket } from "./helpers/scripted-socket.ts";

test("a device whose socket factory throws backs off and retries, counting a connect error, instead of hanging", async () => {
  // net.connect throws synchronously for an invalid local address; an injected transport may throw for anything.
  let calls = 0;
  const fleet = createFleet({
    url: "mqtt://127.0.0.1:1",
    devices: 1,
    rate: 0,
    backoff: { baseDelayMs: 5, maxDelayMs: 5 },
    random: seededRandom(1),
    settleMs: 0,
    drainTimeoutMs: 0,
    socketFactory: () => {
      calls++;
      if (calls <= 2) throw Object.assign(new Error("invalid IP address: nowhere"), { code: "ERR_INVALID_IP_ADDRESS" });
      return scriptedSocket(acknowledge);
    },
  });
  await fleet.start();
  const online = await fleet.whenOnline(1, 5000);
  const report = await fleet.stop();
  assert.ok(online, `the device came online after the failed attempts (${calls} factory calls)`);
  assert.equal(report.stats.counters.connectErrors, 2);
  assert.equal(report.stats.started, 1);
  assert.equal(report.violations, 0, JSON.stringify(report.violationDetails));
});
