/**
 * A command ack that falls out of the full offline buffer was dropped by the firmware's design (the oldest goes
 * first, whatever it is), as dropped telemetry is: counted, not a `command-unacked` violation. An ack still owed at
 * the end (queued, never dropped, never acknowledged) stays one.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Packet } from "mqtt-packet";
import { getCodec } from "../../codecs/index.ts";
import { bookBufferLoss } from "../../firmware-sim/device/buffer-loss.ts";
import { CommandBook, MAX_DROPPED_ACK_COMMANDS } from "../../firmware-sim/device/command-book.ts";
import type { Outgoing } from "../../firmware-sim/device/outbox.ts";
import { createFleet, seededRandom } from "../../firmware-sim/index.ts";
import { checkDeviceAtEnd } from "../../firmware-sim/invariants/device-checks.ts";
import { FleetMetrics } from "../../firmware-sim/stats.ts";
import { acknowledge, type ScriptedBroker, scriptedSocket } from "./helpers/scripted-socket.ts";
import { runUntil } from "./helpers/wait.ts";

function unackedViolations(commands: CommandBook): string[] {
  const found: string[] = [];
  const end = { deviceId: "d-1", everOnline: true, twin: false, commands, shadow: undefined };
  checkDeviceAtEnd(end, (kind, message) => found.push(`${kind}: ${message}`));
  return found;
}

describe("command acks dropped from the offline buffer", () => {
  it("are no violation when every ack of the command was dropped, and still one while an ack is owed", () => {
    const book = new CommandBook();
    book.receive("c1");
    book.executed({ id: "c1", ok: true });
    book.ackDropped("c1");
    assert.deepEqual(unackedViolations(book), []);
    // Redelivered: the device answers with its ack again, which is owed until acknowledged or dropped in turn.
    book.receive("c1");
    assert.deepEqual(unackedViolations(book), ["command-unacked: command c1: no ack of it was acknowledged"]);
    book.ackDropped("c1");
    assert.deepEqual(unackedViolations(book), []);
  });

  it(`count the commands forgotten beyond the latest ${MAX_DROPPED_ACK_COMMANDS} whose every ack was dropped`, () => {
    const device = { metrics: new FleetMetrics(), commands: new CommandBook(), shadow: undefined };
    const ack = (id: string): Outgoing => {
      const payload = new Uint8Array();
      return { channel: "ack", topic: "devices/d-1/up/ack", payload, kind: "ack", ref: id, dup: false, sentMs: 0 };
    };
    for (let i = 0; i < MAX_DROPPED_ACK_COMMANDS + 3; i++) {
      device.commands.receive(`c${i}`);
      device.commands.executed({ id: `c${i}`, ok: true });
      bookBufferLoss(device, ack(`c${i}`));
    }
    const c = device.metrics.counters;
    assert.equal(c.acksDropped, MAX_DROPPED_ACK_COMMANDS + 3);
    assert.equal(c.commandsForgotten, 3);
    assert.equal(device.commands.size, MAX_DROPPED_ACK_COMMANDS);
  });

  it("a run whose buffer dropped an ack while the broker was slow reports no violation", async () => {
    let held: { messageId: number; broker: ScriptedBroker } | undefined;
    let released = false;
    let dropsWhenCommanded: number | undefined;
    const command = Buffer.from(getCodec("cbor").encodeDown("cmd", { id: "c-1", n: "ping" }));
    const fleet = createFleet({
      url: "mqtt://127.0.0.1:1",
      devices: 1,
      rate: 100,
      offlineBufferSize: 1,
      maxInflight: 1,
      random: seededRandom(11),
      settleMs: 0,
      socketFactory: () =>
        scriptedSocket((packet: Packet, broker: ScriptedBroker) => {
          const telemetry = packet.cmd === "publish" && packet.topic.includes("/up/telemetry");
          // The first telemetry's PUBACK is held, so the one-message window stays full and the ack waits in the
          // one-entry buffer, where the next reading pushes it out.
          if (telemetry && !released && held === undefined && packet.messageId !== undefined) {
            held = { messageId: packet.messageId, broker };
            return;
          }
          acknowledge(packet, broker);
          if (packet.cmd === "publish" && packet.topic.includes("/up/hello")) {
            const topic = "devices/sim-1/down/cmd";
            broker.reply({ cmd: "publish", topic, payload: command, qos: 1, messageId: 7, dup: false, retain: false });
          }
        }),
    });
    const report = await runUntil(
      fleet,
      (s) => {
        // Once the command arrived, its ack (or a later reading) is the one entry in the buffer: one more drop and the
        // ack is gone.
        if (s.counters.commandsReceived >= 1) dropsWhenCommanded ??= s.counters.bufferDropped;
        if (!released && held && dropsWhenCommanded !== undefined && s.counters.bufferDropped > dropsWhenCommanded) {
          released = true;
          held.broker.reply({ cmd: "puback", messageId: held.messageId });
        }
        return released && s.counters.acked >= 3;
      },
      "the ack dropped, then the broker catching up",
    );
    const c = report.stats.counters;
    assert.deepEqual(report.violationDetails, []);
    assert.equal(c.commandsReceived, 1);
    assert.equal(c.acksDropped, 1);
    assert.equal(c.commandsForgotten, 0);
    assert.equal(report.ok, true, report.reasons.join("; "));
  });
});
