/** The fleet's connection counters and the progress line built from them, against scripted in-memory brokers. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Packet } from "mqtt-packet";
import { createFleet, formatProgress, seededRandom } from "../../firmware-sim/index.ts";
import { acknowledge, type ScriptedBroker, scriptedSocket } from "./helpers/scripted-socket.ts";
import { runUntil, waitUntil } from "./helpers/wait.ts";

describe("connection counters", () => {
  test("count every attempt that ends before a CONNACK as a connect error: socket errors, timeouts, broker closes", async () => {
    let attempt = 0;
    const fleet = createFleet({
      url: "mqtt://127.0.0.1:1",
      devices: 1,
      rate: 0,
      connectTimeoutMs: 30,
      backoff: { baseDelayMs: 5, maxDelayMs: 5 },
      random: seededRandom(3),
      settleMs: 0,
      drainTimeoutMs: 0,
      // Attempts alternate: a broker that never answers (the attempt times out), one that closes on the CONNECT.
      socketFactory: () =>
        scriptedSocket((packet: Packet, broker: ScriptedBroker) => {
          if (packet.cmd === "connect" && attempt++ % 2 === 1) broker.close();
        }),
    });
    const report = await runUntil(fleet, (s) => s.counters.connectAttempts >= 6, "six attempts");
    const c = report.stats.counters;
    assert.equal(c.connects, 0);
    assert.equal(c.connectRefused, 0);
    // Every attempt but the one stop() cut short ended in an error.
    assert.ok(c.connectErrors >= c.connectAttempts - 1, JSON.stringify(c));
    assert.ok(c.serverCloses >= 2, JSON.stringify(c));
  });

  test("count reconnects of devices that were online before, whatever other devices do", async () => {
    const closedOnce = new Set<string>();
    const fleet = createFleet({
      url: "mqtt://127.0.0.1:1",
      devices: 3,
      rate: 0,
      backoff: { baseDelayMs: 5, maxDelayMs: 5 },
      random: seededRandom(5),
      settleMs: 0,
      drainTimeoutMs: 0,
      // sim-1 is refused every time; sim-2 is dropped by the broker once after its hello; sim-3 stays.
      socketFactory: () => {
        let clientId = "";
        return scriptedSocket((packet, broker) => {
          if (packet.cmd === "connect") {
            clientId = packet.clientId;
            if (clientId === "sim-1") {
              broker.reply({ cmd: "connack", returnCode: 5, sessionPresent: false });
              return;
            }
          }
          acknowledge(packet, broker);
          if (packet.cmd === "publish" && clientId === "sim-2" && !closedOnce.has(clientId)) {
            closedOnce.add(clientId);
            broker.close();
          }
        });
      },
    });
    const report = await runUntil(
      fleet,
      (s) => s.counters.connects >= 3 && s.counters.connectRefused >= 2,
      "sim-2 back after its drop while sim-1 is refused",
    );
    const c = report.stats.counters;
    assert.equal(c.reconnects, 1, JSON.stringify(c));
    // Three devices powered and three accepted CONNACKs, yet one of them was a reconnect.
    assert.match(formatProgress({ ...report.stats, started: 3 }), /reconn 1 /);
  });

  test("count no reconnect for a device that never came online: a setup that failed after its CONNACK is retried, not reconnected", async () => {
    // Every device's first two setups fail after an accepted CONNACK (its subscription refused, then its hello never
    // acknowledged until the setup times out); the third comes online. None was ever online before it.
    const setups = new Map<string, number>();
    const fleet = createFleet({
      url: "mqtt://127.0.0.1:1",
      devices: 2,
      rate: 0,
      connectTimeoutMs: 50,
      backoff: { baseDelayMs: 5, maxDelayMs: 5 },
      random: seededRandom(7),
      settleMs: 0,
      drainTimeoutMs: 0,
      socketFactory: () => {
        let setup = 0;
        return scriptedSocket((packet, broker) => {
          if (packet.cmd === "connect") {
            setup = (setups.get(packet.clientId) ?? 0) + 1;
            setups.set(packet.clientId, setup);
          }
          if (packet.cmd === "subscribe" && setup === 1) {
            broker.reply({ cmd: "suback", messageId: packet.messageId, granted: [0x80] });
            return;
          }
          if (packet.cmd === "publish" && setup === 2) return;
          acknowledge(packet, broker);
        });
      },
    });
    await fleet.start();
    assert.ok(await fleet.whenOnline(2, 10_000), "both devices came online on their third setup");
    const report = await fleet.stop();
    const c = report.stats.counters;
    assert.equal(c.connects, 6, JSON.stringify(c));
    assert.equal(c.reconnects, 0, JSON.stringify(c));
    assert.match(formatProgress(report.stats), /reconn 0 /);
  });

  test("count a device as online only once its subscription is granted and its hello acknowledged, as the online event does", async () => {
    // A broker that accepts the CONNECT and the SUBSCRIBE but never acknowledges the hello.
    const fleet = createFleet({
      url: "mqtt://127.0.0.1:1",
      devices: 1,
      rate: 0,
      settleMs: 0,
      drainTimeoutMs: 0,
      socketFactory: () =>
        scriptedSocket((packet, broker) => {
          if (packet.cmd !== "publish") acknowledge(packet, broker);
        }),
    });
    await fleet.start();
    const online = await fleet.whenOnline(1, 300);
    const stats = fleet.stats();
    const report = await fleet.stop();
    assert.equal(online, false, "not online before its hello is acknowledged");
    assert.equal(stats.counters.connects, 1, "the CONNACK came");
    assert.equal(stats.online, 0);
    assert.equal(report.stats.online, 0);
  });

  test("acked per second counts only PUBACKs of the active time, not those the drain collects after it", async () => {
    // A broker that holds telemetry PUBACKs until the test lets them go, after stop() began: all arrive in the drain.
    const held: (() => void)[] = [];
    let release = false;
    const fleet = createFleet({
      url: "mqtt://127.0.0.1:1",
      devices: 1,
      rate: 100,
      maxInflight: 1000,
      settleMs: 0,
      drainTimeoutMs: 5000,
      socketFactory: () =>
        scriptedSocket((packet, broker) => {
          if (packet.cmd === "publish" && packet.topic.endsWith("/telemetry") && !release) {
            held.push(() => broker.reply({ cmd: "puback", messageId: packet.messageId }));
            return;
          }
          acknowledge(packet, broker);
        }),
    });
    await fleet.start();
    assert.ok(await fleet.whenOnline(1, 5000));
    await waitUntil(() => held.length >= 10, "ten telemetry PUBACKs held");
    const stopped = fleet.stop();
    await new Promise((resolve) => setTimeout(resolve, 50));
    release = true;
    for (const ack of held.splice(0)) ack();
    const report = await stopped;
    assert.ok(report.stats.counters.telemetryAcked >= 10, JSON.stringify(report.stats.counters));
    assert.equal(report.undelivered, 0);
    // Within the active time only the hello and the state report (if any) were acknowledged.
    assert.ok(report.ackedPerSec <= (2 * 1000) / report.activeMs, `${report.ackedPerSec}/s over ${report.activeMs} ms`);
  });
});
