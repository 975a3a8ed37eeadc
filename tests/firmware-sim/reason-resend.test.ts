/**
 * A reasoning request's final frame delivered twice. The broker's resend of it (the device's PUBACK was lost) is the
 * broker's business; a new PUBLISH of it is a frame after the final frame, which the bridge never sends. A broker that
 * sets DUP ([MQTT-3.3.1-1]) says which, as for commands; from one that does not (`brokerSetsDup: false`), the
 * repeated final frame passes for its resend.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Packet } from "mqtt-packet";
import { getCodec } from "../../codecs/index.ts";
import { createFleet, type FleetReport, seededRandom } from "../../firmware-sim/index.ts";
import { acknowledge, type ScriptedBroker, scriptedSocket } from "./helpers/scripted-socket.ts";
import { runUntil } from "./helpers/wait.ts";

const codec = getCodec("cbor");

/** Answers the device's first reasoning question with its final frame, then sends that frame again with `againDup`. */
async function finalFrameTwice(againDup: boolean, brokerSetsDup?: boolean): Promise<FleetReport> {
  let answered = false;
  const fleet = createFleet({
    url: "mqtt://127.0.0.1:1",
    devices: 1,
    profile: "reasoning",
    rate: 0,
    brokerSetsDup,
    reasonIntervalMs: 1,
    random: seededRandom(5),
    settleMs: 0,
    socketFactory: () =>
      scriptedSocket((packet: Packet, broker: ScriptedBroker) => {
        acknowledge(packet, broker);
        if (answered || packet.cmd !== "publish" || !packet.topic.endsWith("/up/reason")) return;
        const question = codec.decodeUp("reason", packet.payload as Buffer);
        if (!question.ok) return;
        answered = true;
        const payload = Buffer.from(codec.encodeDown("reason", { id: question.frame.id, seq: 0, fin: true }));
        const topic = "devices/sim-1/down/reason";
        broker.reply({ cmd: "publish", topic, payload, qos: 1, messageId: 3, dup: false, retain: false });
        broker.reply({ cmd: "publish", topic, payload, qos: 1, messageId: 3, dup: againDup, retain: false });
      }),
  });
  return runUntil(
    fleet,
    (s) => s.counters.reasonFinished >= 1 && s.counters.downReceived >= 2,
    "the final frame, then the same final frame again",
  );
}

function violations(report: FleetReport): string[] {
  return report.violationDetails.map((v) => `${v.kind}: ${v.message}`);
}

describe("a reasoning request's final frame delivered again", () => {
  it("is the broker's resend when its PUBLISH has DUP set", async () => {
    const report = await finalFrameTwice(true);
    assert.deepEqual(violations(report), []);
    assert.equal(report.stats.counters.reasonFinished, 1);
    assert.equal(report.ok, true, report.reasons.join("; "));
  });

  it("is a violation without DUP from a broker that sets DUP, even with the same packet id", async () => {
    const report = await finalFrameTwice(false);
    const found = violations(report);
    assert.equal(found.length, 1, found.join("\n"));
    assert.match(found[0] ?? "", /^reason-out-of-order: request \S+: its final frame \(seq 0\) again without DUP/);
    assert.equal(report.ok, false);
  });

  it("is taken for the resend of a broker that resends without DUP", async () => {
    const report = await finalFrameTwice(false, false);
    assert.deepEqual(violations(report), []);
    assert.equal(report.ok, true, report.reasons.join("; "));
  });
});
