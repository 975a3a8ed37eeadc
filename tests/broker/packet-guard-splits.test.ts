/**
 * The packet guard reads only fixed headers, and a header may be split anywhere by TCP or by WebSocket frames: a
 * packet's type byte in one chunk and its remaining length in the next must still be read as one header, and several
 * packets in one chunk each checked. Every client packet passes however its bytes are split; a packet only a server
 * sends is refused wherever the split falls.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import mqttPacket from "mqtt-packet";
import { setTimeout as sleep } from "node:timers/promises";
import { PacketSizeTracker } from "../../broker/listeners/packet-guard.ts";
import { connectPacket, serveUpgrades, startTestBroker, waitUntil } from "./helpers.ts";
import { rawWebSocket } from "./raw-websocket.ts";

function publish(payloadBytes: number, qos: 0 | 1 | 2): Buffer {
  return mqttPacket.generate({
    cmd: "publish",
    topic: "devices/d/up/telemetry",
    payload: Buffer.alloc(payloadBytes, 0x20),
    qos,
    messageId: qos === 0 ? undefined : 7,
    dup: false,
    retain: false,
  });
}

/** Every packet type a client may send, with remaining lengths of one, two and three bytes. */
const CLIENT_STREAM = Buffer.concat([
  mqttPacket.generate({ cmd: "connect", clientId: "d", protocolId: "MQTT", protocolVersion: 4, keepalive: 30 }),
  mqttPacket.generate({ cmd: "subscribe", messageId: 2, subscriptions: [{ topic: "devices/d/down/#", qos: 1 }] }),
  publish(0, 0),
  // Payload sizes around the one/two-byte (127) and two/three-byte (16383) remaining length boundaries.
  publish(100, 1),
  publish(104, 0),
  publish(200, 2),
  publish(16_400, 1),
  mqttPacket.generate({ cmd: "puback", messageId: 1 }),
  mqttPacket.generate({ cmd: "pubrec", messageId: 1 }),
  mqttPacket.generate({ cmd: "pubrel", messageId: 1 }),
  mqttPacket.generate({ cmd: "pubcomp", messageId: 1 }),
  mqttPacket.generate({ cmd: "unsubscribe", messageId: 3, unsubscriptions: ["devices/d/down/#"] }),
  mqttPacket.generate({ cmd: "pingreq" }),
  mqttPacket.generate({ cmd: "disconnect" }),
]);

/** Packets only a server sends, with a body (SUBACK) and without one (PINGRESP). */
const SERVER_ONLY = [
  { name: "CONNACK", bytes: mqttPacket.generate({ cmd: "connack", returnCode: 0, sessionPresent: false }) },
  { name: "SUBACK", bytes: mqttPacket.generate({ cmd: "suback", messageId: 1, granted: [0] }) },
  { name: "UNSUBACK", bytes: Buffer.from([0xb0, 0x02, 0x00, 0x01]) },
  { name: "PINGRESP", bytes: mqttPacket.generate({ cmd: "pingresp" }) },
];

/** Feeds `bytes` cut at `cuts`; the first refused chunk's index, or -1. */
function feedCut(tracker: PacketSizeTracker, bytes: Buffer, cuts: number[]): number {
  const bounds = [0, ...cuts, bytes.length];
  for (let i = 0; i + 1 < bounds.length; i++) {
    if (bounds[i] === bounds[i + 1]) continue;
    if (!tracker.feed(bytes.subarray(bounds[i], bounds[i + 1]))) return i;
  }
  return -1;
}

describe("MQTT packet guard across chunk boundaries", () => {
  test("every client packet passes with the stream cut in two at every byte offset", () => {
    for (let at = 1; at < CLIENT_STREAM.length; at++) {
      const tracker = new PacketSizeTracker(100_000, "client");
      assert.equal(feedCut(tracker, CLIENT_STREAM, [at]), -1, `cut at ${at}`);
      assert.equal(tracker.atPacketBoundary, true, `cut at ${at}`);
    }
  });

  test("every client packet passes fed one byte at a time, and all in one chunk", () => {
    const byByte = new PacketSizeTracker(100_000, "client");
    const cuts = Array.from({ length: CLIENT_STREAM.length - 1 }, (_, i) => i + 1);
    assert.equal(feedCut(byByte, CLIENT_STREAM, cuts), -1);
    const whole = new PacketSizeTracker(100_000, "client");
    assert.equal(whole.feed(CLIENT_STREAM), true);
    assert.equal(whole.atPacketBoundary, true);
  });

  test("a packet only a server sends is refused wherever the stream is cut, and only it", () => {
    const head = CLIENT_STREAM.subarray(0, CLIENT_STREAM.length - 2); // without the DISCONNECT
    for (const packet of SERVER_ONLY) {
      const bytes = Buffer.concat([head, packet.bytes, mqttPacket.generate({ cmd: "pingreq" })]);
      const headerEnd = head.length + 2; // type byte and a one-byte remaining length
      for (let at = 1; at < bytes.length; at++) {
        const tracker = new PacketSizeTracker(100_000, "client");
        const refusedIn = feedCut(tracker, bytes, [at]);
        // Refused in the chunk that completes its fixed header.
        assert.equal(refusedIn, at < headerEnd ? 1 : 0, `${packet.name}, cut at ${at}`);
        assert.equal(tracker.refusal, "server-only", `${packet.name}, cut at ${at}`);
        assert.equal(tracker.refusedPacketName, packet.name, `${packet.name}, cut at ${at}`);
      }
    }
  });

  test("the server's own packets pass its tracker however they are cut", () => {
    const bytes = Buffer.concat([...SERVER_ONLY.map((p) => p.bytes), publish(300, 1)]);
    for (let at = 1; at < bytes.length; at++) {
      const tracker = new PacketSizeTracker(Number.POSITIVE_INFINITY, "server");
      assert.equal(feedCut(tracker, bytes, [at]), -1, `cut at ${at}`);
      assert.equal(tracker.atPacketBoundary, true);
    }
  });

  test("over a WebSocket, packets split after their type byte and packets sharing a frame pass, and the broker's answers (CONNACK, SUBACK, PINGRESP) do not trip the guard", async () => {
    const tb = await startTestBroker();
    const served = await serveUpgrades(tb.broker);
    const ws = await rawWebSocket(served.port);
    try {
      const secret = await tb.addDevice("ws-split");
      const pingreq = mqttPacket.generate({ cmd: "pingreq" });
      const subscribe = mqttPacket.generate({
        cmd: "subscribe",
        messageId: 2,
        subscriptions: [{ topic: "devices/ws-split/down/#", qos: 1 }],
      });
      const connect = connectPacket("ws-split", secret);
      // Each frame is read apart: the type byte alone, then the rest of the packet.
      for (const packet of [connect, subscribe, pingreq]) {
        ws.send(packet.subarray(0, 1));
        await sleep(20);
        ws.send(packet.subarray(1));
        await sleep(20);
      }
      // Several packets in one frame, the last one's type byte ending it.
      ws.send(Buffer.concat([pingreq, pingreq, pingreq.subarray(0, 1)]));
      await sleep(20);
      ws.send(pingreq.subarray(1));
      await waitUntil(() => ws.packets.filter((p) => p.cmd === "pingresp").length === 4);
      assert.deepEqual(
        ws.packets.map((p) => p.cmd),
        ["connack", "suback", "pingresp", "pingresp", "pingresp", "pingresp"],
      );
      assert.equal(ws.closeCode(), undefined);
      assert.equal(tb.broker.isOnline("ws-split"), true);
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_PROTOCOL_VIOLATION ?? 0, 0);
    } finally {
      ws.destroy();
      await tb.close();
      await served.close();
    }
  });
});
