/**
 * stop() ends every connection it opened, whatever the broker does: a device sends DISCONNECT and half-closes, and a
 * broker that stalls (it never answers, or never closes its side) must not keep sockets, and so the process, alive
 * after the report.
 */
import assert from "node:assert/strict";
import { Duplex } from "node:stream";
import { describe, test } from "node:test";
import mqttPacket, { type Packet } from "mqtt-packet";
import { createFleet } from "../../firmware-sim/index.ts";
import { waitUntil } from "./helpers/wait.ts";

/** An in-memory broker end that answers only what `answer` returns and never closes its side. */
function stalledSocket(answer: (packet: Packet) => Packet | undefined): Duplex {
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const socket: Duplex = new Duplex({
    allowHalfOpen: true,
    read() {},
    write(chunk: Buffer, _encoding, done) {
      parser.parse(chunk);
      done();
    },
  });
  parser.on("packet", (packet: Packet) => {
    const reply = answer(packet);
    if (reply) setImmediate(() => socket.push(mqttPacket.generate(reply)));
  });
  return socket;
}

/** Answers CONNECT, SUBSCRIBE and QoS 1 PUBLISH like a broker, and nothing else (a DISCONNECT is not acted on). */
function acknowledging(packet: Packet): Packet | undefined {
  if (packet.cmd === "connect") return { cmd: "connack", returnCode: 0, sessionPresent: false };
  if (packet.cmd === "subscribe") return { cmd: "suback", messageId: packet.messageId, granted: [1] };
  if (packet.cmd === "publish" && packet.qos === 1) return { cmd: "puback", messageId: packet.messageId };
  return undefined;
}

describe("stop", () => {
  test("destroys a connection attempt the broker never answers", async () => {
    const sockets: Duplex[] = [];
    const fleet = createFleet({
      url: "mqtt://127.0.0.1:1",
      devices: 2,
      rate: 0,
      settleMs: 0,
      drainTimeoutMs: 0,
      socketFactory: () => {
        const socket = stalledSocket(() => undefined);
        sockets.push(socket);
        return socket;
      },
    });
    void fleet.start();
    await waitUntil(() => sockets.length === 2, "two connection attempts");
    await fleet.stop();
    assert.deepStrictEqual(
      sockets.map((s) => s.destroyed),
      [true, true],
    );
  });

  test("destroys an online device's connection when the broker does not close it after DISCONNECT", async () => {
    const sockets: Duplex[] = [];
    const fleet = createFleet({
      url: "mqtt://127.0.0.1:1",
      devices: 1,
      rate: 0,
      settleMs: 0,
      drainTimeoutMs: 0,
      socketFactory: () => {
        const socket = stalledSocket(acknowledging);
        sockets.push(socket);
        return socket;
      },
    });
    await fleet.start();
    assert.ok(await fleet.whenOnline(1, 10_000), "the device came online");
    const report = await fleet.stop();
    assert.equal(sockets.length, 1);
    assert.equal(sockets[0].destroyed, true);
    assert.equal(report.stats.online, 0);
    assert.equal(report.violations, 0, JSON.stringify(report.violationDetails));
  });
});
