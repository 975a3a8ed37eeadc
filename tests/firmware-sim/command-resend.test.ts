/**
 * The broker's resend of a command after the device's ack of it was stored: the device's PUBACK of the command was
 * lost with its connection, and a persistent session gets the command again at the next one. That is the broker's
 * business, no `command-redelivered-after-ack`; a new PUBLISH of the command is one. A broker that sets DUP
 * ([MQTT-3.3.1-1]) says which by DUP; from one that does not (`brokerSetsDup: false`), the packet id tells.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Packet } from "mqtt-packet";
import { getCodec } from "../../codecs/index.ts";
import { createFleet, type FleetReport, seededRandom } from "../../firmware-sim/index.ts";
import { acknowledge, type ScriptedBroker, scriptedSocket } from "./helpers/scripted-socket.ts";
import { runUntil } from "./helpers/wait.ts";

const COMMAND_PACKET_ID = 5;

const command = Buffer.from(getCodec("cbor").encodeDown("cmd", { id: "c-1", n: "ping" }));

function commandPublish(messageId: number, dup: boolean): Packet {
  return { cmd: "publish", topic: "devices/sim-1/down/cmd", payload: command, qos: 1, messageId, dup, retain: false };
}

/**
 * First connection: the command, the ack's PUBACK, the device's PUBACK of the command ignored, then the connection cut
 * (once the device has its ack's PUBACK). Second connection, the session present: the command again, in a PUBLISH
 * with `again`'s DUP flag and packet id.
 */
async function resendAfterStoredAck(
  again: { dup: boolean; packetId: number },
  brokerSetsDup?: boolean,
): Promise<FleetReport> {
  const brokers: ScriptedBroker[] = [];
  let cut = false;
  const fleet = createFleet({
    url: "mqtt://127.0.0.1:1",
    devices: 1,
    rate: 0,
    cleanSession: false,
    brokerSetsDup,
    backoff: { baseDelayMs: 1, maxDelayMs: 5 },
    random: seededRandom(3),
    settleMs: 0,
    socketFactory: () => {
      const connection = brokers.length;
      return scriptedSocket((packet: Packet, broker: ScriptedBroker) => {
        if (packet.cmd === "connect") {
          brokers.push(broker);
          broker.reply({ cmd: "connack", returnCode: 0, sessionPresent: connection > 0 });
          if (connection > 0) broker.reply(commandPublish(again.packetId, again.dup));
          return;
        }
        // Lost with the first connection.
        if (packet.cmd === "puback" && connection === 0) return;
        acknowledge(packet, broker);
        if (connection === 0 && packet.cmd === "publish" && packet.topic.includes("/up/hello")) {
          broker.reply(commandPublish(COMMAND_PACKET_ID, false));
        }
      });
    },
  });
  return runUntil(
    fleet,
    (s) => {
      // PUBACKs of the hello and of the ack: the ack is stored, and the command finished for the device.
      if (!cut && s.counters.acked >= 2) {
        cut = true;
        brokers[0]?.close();
      }
      return s.counters.commandsRedelivered >= 1 && s.counters.acked >= 4;
    },
    "the command resent after its ack was stored, and the ack answered again",
  );
}

function redeliveryViolations(report: FleetReport): string[] {
  return report.violationDetails.map((v) => `${v.kind}: ${v.message}`);
}

describe("a command resent after its ack was stored", () => {
  it("is the broker's resend when its PUBLISH has DUP set", async () => {
    const report = await resendAfterStoredAck({ dup: true, packetId: COMMAND_PACKET_ID });
    assert.deepEqual(redeliveryViolations(report), []);
    assert.equal(report.stats.counters.commandsReceived, 2);
    assert.equal(report.stats.counters.commandsRedelivered, 1);
    assert.equal(report.ok, true, report.reasons.join("; "));
  });

  it("is a new delivery, a violation, without DUP from a broker that sets DUP, even with the same packet id", async () => {
    const report = await resendAfterStoredAck({ dup: false, packetId: COMMAND_PACKET_ID });
    assert.deepEqual(redeliveryViolations(report), [
      "command-redelivered-after-ack: command c-1: delivered again after its ack was stored",
    ]);
  });

  it("from a broker that resends without DUP, is its resend with the same packet id and a violation with another", async () => {
    const resend = await resendAfterStoredAck({ dup: false, packetId: COMMAND_PACKET_ID }, false);
    assert.deepEqual(redeliveryViolations(resend), []);
    const fresh = await resendAfterStoredAck({ dup: false, packetId: COMMAND_PACKET_ID + 1 }, false);
    assert.deepEqual(redeliveryViolations(fresh), [
      "command-redelivered-after-ack: command c-1: delivered again after its ack was stored",
    ]);
  });
});
