/**
 * A SUBACK refusing the device's down filter (0x80: an ACL, a per-session subscription cap) is a failed connection
 * setup: the device would be connected yet deaf to every command and delta. Real firmware does not go on as if online.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Packet } from "mqtt-packet";
import { createFleet, formatSummary, seededRandom } from "../../firmware-sim/index.ts";
import { acknowledge, scriptedSocket } from "./helpers/scripted-socket.ts";
import { runUntil } from "./helpers/wait.ts";

test("a refused subscription is counted, reported once per device, and the device disconnects and retries with backoff", async () => {
  let subscribes = 0;
  const sent: string[][] = [];
  const fleet = createFleet({
    url: "mqtt://127.0.0.1:1",
    devices: 1,
    rate: 0,
    backoff: { baseDelayMs: 20, maxDelayMs: 20 },
    random: seededRandom(4),
    settleMs: 0,
    drainTimeoutMs: 0,
    socketFactory: () => {
      const packets: string[] = [];
      sent.push(packets);
      return scriptedSocket((packet: Packet, broker) => {
        packets.push(packet.cmd === "publish" ? `publish ${packet.topic}` : packet.cmd);
        // The first two attempts have their down filter refused, the third is granted.
        if (packet.cmd === "subscribe" && ++subscribes <= 2) {
          broker.reply({ cmd: "suback", messageId: packet.messageId, granted: [0x80] });
          return;
        }
        acknowledge(packet, broker);
      });
    },
  });
  const offline: string[] = [];
  let online = 0;
  fleet.events.on("offline", (id, reason) => offline.push(`${id} ${reason}`));
  fleet.events.on("online", () => online++);
  const report = await runUntil(
    fleet,
    (s) => s.counters.subscribeRefused >= 2 && online === 1,
    "online after two refusals",
  );
  const c = report.stats.counters;
  assert.equal(c.subscribeRefused, 2);
  assert.equal(c.connects, 3);
  assert.equal(c.connectErrors, 0, "a refused subscription is not a socket error");
  // A refused attempt says no hello (it is not online) and says goodbye cleanly before retrying.
  assert.deepEqual(sent[0], ["connect", "subscribe", "disconnect"]);
  assert.deepEqual(sent[1], ["connect", "subscribe", "disconnect"]);
  assert.deepEqual(sent[2]?.slice(0, 3), ["connect", "subscribe", "publish devices/sim-1/up/hello/cbor"]);
  assert.deepEqual(offline, [], "never online on a refused connection, so never offline from one");
  assert.equal(report.violationCounts["subscription-refused"], 1, "one violation per device, all refusals counted");
  assert.match(report.violationDetails[0]?.message ?? "", /devices\/sim-1\/down\/# .*0x80/);
  assert.equal(report.ok, false);
  assert.match(report.reasons.join(), /1 violation/);
  assert.match(formatSummary(report), /refused CONNACK \/ refused SUBACK \/ connect errors\s+0 \/ 2 \/ 0\n/);
});

test("a device whose subscription is always refused keeps retrying and is reported as never connected", async () => {
  const fleet = createFleet({
    url: "mqtt://127.0.0.1:1",
    devices: 1,
    rate: 0,
    backoff: { baseDelayMs: 5, maxDelayMs: 5 },
    random: seededRandom(8),
    settleMs: 0,
    drainTimeoutMs: 0,
    socketFactory: () =>
      scriptedSocket((packet, broker) => {
        if (packet.cmd === "subscribe") broker.reply({ cmd: "suback", messageId: packet.messageId, granted: [0x80] });
        else acknowledge(packet, broker);
      }),
  });
  const report = await runUntil(fleet, (s) => s.counters.subscribeRefused >= 3, "three refusals");
  assert.ok(report.stats.counters.subscribeRefused >= 3);
  assert.equal(report.violationCounts["subscription-refused"], 1);
  assert.equal(report.violationCounts["device-never-connected"], 1);
  assert.match(report.reasons.join(), /no device came online/);
});
