/**
 * A bug in the simulator itself (a device task or a packet handler that throws) must be visible, counted and logged
 * once per kind, and fail the run, yet leave every other device (and the failing one's next tasks) running.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createFleet, formatSummary, type RandomSource } from "../../firmware-sim/index.ts";
import { formatSimulatorError } from "../../firmware-sim/report/format.ts";
import { writeLogLine } from "../../firmware-sim/report/progress.ts";
import { LeanConnection } from "../../firmware-sim/mqtt/lean-connection.ts";
import { acknowledge, scriptedSocket } from "./helpers/scripted-socket.ts";
import { waitUntil } from "./helpers/wait.ts";

describe("simulator errors", () => {
  test("a device task that throws is counted, reported once per kind and fails the run, and the fleet keeps going", async () => {
    // After the devices are online the only random draws are telemetry readings: failing three of them makes three
    // telemetry ticks throw, as a bug in a profile would.
    let failNext = 0;
    const random: RandomSource = () => {
      if (failNext > 0) {
        failNext--;
        throw new TypeError("injected bug in a reading");
      }
      return 0.5;
    };
    const telemetryBy = new Map<string, number>();
    const fleet = createFleet({
      url: "mqtt://127.0.0.1:1",
      devices: 2,
      rate: 50,
      random,
      settleMs: 0,
      drainTimeoutMs: 2000,
      socketFactory: () => {
        let clientId = "";
        return scriptedSocket((packet, broker) => {
          if (packet.cmd === "connect") clientId = packet.clientId;
          if (packet.cmd === "publish" && packet.topic.endsWith("/telemetry"))
            telemetryBy.set(clientId, (telemetryBy.get(clientId) ?? 0) + 1);
          acknowledge(packet, broker);
        });
      },
    });
    const logged: string[] = [];
    fleet.events.on("simulatorError", (e) => logged.push(`${e.kind} @${e.deviceId}`));
    await fleet.start();
    assert.ok(await fleet.whenOnline(2, 5000));
    failNext = 3;
    await waitUntil(() => failNext === 0, "three failed telemetry ticks");
    const after = new Map(telemetryBy);
    await waitUntil(
      () => [...after].every(([id, n]) => (telemetryBy.get(id) ?? 0) >= n + 5),
      "both devices still publishing after the failures",
    );
    const report = await fleet.stop();
    assert.equal(report.stats.counters.simulatorErrors, 3);
    assert.equal(report.simulatorErrors.length, 1, JSON.stringify(report.simulatorErrors));
    const [summary] = report.simulatorErrors;
    assert.equal(summary.kind, "TypeError: injected bug in a reading");
    assert.equal(summary.count, 3);
    assert.match(summary.deviceId ?? "", /^sim-\d$/);
    assert.equal(logged.length, 1, "logged once for its kind");
    assert.equal(report.violations, 0, "a simulator bug is not a violation of the bridge");
    assert.equal(report.ok, false);
    assert.ok(
      report.reasons.some((r) => /3 simulator errors/.test(r)),
      report.reasons.join("; "),
    );
    const table = formatSummary(report);
    assert.match(table, /simulator errors \(bugs of the simulator\)\s+3\n/);
    assert.match(table, /verdict\s+FAILED: 3 simulator errors/);
    assert.match(table, /simulator errors by kind:\n {2}3 x TypeError: injected bug in a reading \(first: sim-\d\)/);
    assert.match(formatSimulatorError(summary), /^sim: simulator error in device sim-\d: TypeError: injected bug/);
  });

  test("the CLI's log line clears the in-place progress line on a terminal, and is a plain line otherwise", () => {
    const written: string[] = [];
    writeLogLine({ write: (s: string) => written.push(s), isTTY: true }, "sim: x");
    writeLogLine({ write: (s: string) => written.push(s), isTTY: false }, "sim: y");
    assert.deepEqual(written, ["\r\x1b[2Ksim: x\n", "sim: y\n"]);
  });

  test("a packet handler that throws is reported to the connection's error hook, and the next packets still arrive", async () => {
    const errors: unknown[] = [];
    const published: string[] = [];
    let closed = false;
    const connection = new LeanConnection(
      { host: "127.0.0.1", port: 1, tls: false },
      { clientId: "d1", clean: true, keepaliveSec: 0 },
      {
        onConnack: () => {},
        onPublish: (topic) => {
          published.push(topic);
          if (topic === "boom") throw new Error("handler bug");
        },
        onPuback: () => {},
        onSuback: () => {},
        onPingresp: () => {},
        onClose: () => {
          closed = true;
        },
        onHandlerError: (err) => errors.push(err),
      },
      () =>
        scriptedSocket((packet, broker) => {
          if (packet.cmd !== "connect") return;
          broker.reply({ cmd: "connack", returnCode: 0, sessionPresent: false });
          for (const topic of ["boom", "after"])
            broker.reply({ cmd: "publish", topic, payload: Buffer.from("x"), qos: 0, dup: false, retain: false });
        }),
    );
    await waitUntil(() => published.length === 2, "both publishes handled");
    assert.deepEqual(published, ["boom", "after"]);
    assert.equal(errors.length, 1);
    assert.equal((errors[0] as Error).message, "handler bug");
    assert.equal(closed, false, "the connection stays up");
    connection.destroy("test-end");
  });
});
