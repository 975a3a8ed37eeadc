import assert from "node:assert/strict";
import { describe, test } from "node:test";
import mqttPacket from "mqtt-packet";
import { PacketSizeTracker } from "../../broker/listeners/packet-guard.ts";
import { coalesceFrames, FRAME_COALESCE_BYTES } from "../../broker/listeners/websocket-stream.ts";
import { getCodec } from "../../codecs/index.ts";
import {
  collect,
  connectDevice,
  connectPacket,
  endClient,
  serveUpgrades,
  startTestBroker,
  subscribe,
  waitUntil,
} from "./helpers.ts";
import { OPCODE_BINARY, type RawWebSocket, rawWebSocket } from "./raw-websocket.ts";

const binaryFrames = (ws: RawWebSocket) => ws.frames.filter((f) => f.opcode === OPCODE_BINARY);

/** The MQTT packets in one frame's payload, which must hold whole packets only. */
function packetsIn(payload: Buffer): mqttPacket.Packet[] {
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const packets: mqttPacket.Packet[] = [];
  parser.on("packet", (p) => packets.push(p));
  const left = parser.parse(payload);
  assert.equal(left, 0, "the frame ends on a packet boundary");
  return packets;
}

describe("MQTT over WebSocket frames", () => {
  test("a CONNACK, a SUBACK and a down PUBLISH each go out as one binary frame", async () => {
    const tb = await startTestBroker();
    const served = await serveUpgrades(tb.broker);
    const ws = await rawWebSocket(served.port);
    try {
      const secret = await tb.addDevice("ws-frames", "json");
      ws.send(connectPacket("ws-frames", secret));
      await waitUntil(() => ws.packets.some((p) => p.cmd === "connack"));
      ws.send(
        mqttPacket.generate({
          cmd: "subscribe",
          messageId: 1,
          subscriptions: [{ topic: "devices/ws-frames/down/#", qos: 1 }],
        }),
      );
      await waitUntil(() => ws.packets.some((p) => p.cmd === "suback"));
      // Any frame held by the subscribe grace (the runtime's identity) would follow the SUBACK at once.
      await new Promise((resolve) => setTimeout(resolve, 20));
      const before = binaryFrames(ws).length;
      tb.host.transportOf("ws-frames").send({ channel: "cmd", frame: { id: "c1", n: "reboot" } }, { qos: 1 });
      await waitUntil(() => ws.packets.some((p) => p.cmd === "publish"));
      await new Promise((resolve) => setTimeout(resolve, 20));

      const frames = binaryFrames(ws);
      assert.deepEqual(
        ws.packets.map((p) => p.cmd),
        ["connack", "suback", "publish"],
      );
      assert.equal(frames.length, 3, "one frame per packet");
      assert.equal(before, 2);
      assert.deepEqual(
        frames.map((f) => packetsIn(f.payload).map((p) => p.cmd)),
        [["connack"], ["suback"], ["publish"]],
      );
      assert.ok(frames.every((f) => f.fin));
    } finally {
      ws.destroy();
      await tb.close();
      await served.close();
    }
  });

  test("frames of a burst hold whole packets, in order, and stay bounded", async () => {
    const tb = await startTestBroker();
    const served = await serveUpgrades(tb.broker);
    const ws = await rawWebSocket(served.port);
    try {
      const secret = await tb.addDevice("ws-many", "json");
      ws.send(connectPacket("ws-many", secret));
      await waitUntil(() => ws.packets.some((p) => p.cmd === "connack"));
      ws.send(
        mqttPacket.generate({
          cmd: "subscribe",
          messageId: 1,
          subscriptions: [{ topic: "devices/ws-many/down/#", qos: 0 }],
        }),
      );
      await waitUntil(() => ws.packets.some((p) => p.cmd === "suback"));
      const transport = tb.host.transportOf("ws-many");
      const padding = "y".repeat(1000);
      const count = 400;
      for (let i = 0; i < count; i++)
        transport.send({ channel: "cmd", frame: { id: `c${i}`, n: "set", a: { padding } } }, { qos: 0 });
      await waitUntil(() => ws.packets.filter((p) => p.cmd === "publish").length === count, 10_000);

      const frames = binaryFrames(ws).slice(2);
      const inFrames = frames.map((f) => packetsIn(f.payload));
      const largestPacket = Math.max(...inFrames.flat().map((p) => (p as { length?: number }).length ?? 0));
      for (const frame of frames) assert.ok(frame.payload.length < FRAME_COALESCE_BYTES + largestPacket + 8);
      const json = getCodec("json");
      assert.deepEqual(
        inFrames.flat().map((p) => {
          const decoded = json.decodeDown("cmd", (p as mqttPacket.IPublishPacket).payload as Buffer);
          assert.ok(decoded.ok);
          return (decoded.frame as { id: string }).id;
        }),
        Array.from({ length: count }, (_, i) => `c${i}`),
      );
    } finally {
      ws.destroy();
      await tb.close();
      await served.close();
    }
  });

  test("a burst of down frames reaches a WebSocket client complete and in order", async () => {
    const tb = await startTestBroker();
    const served = await serveUpgrades(tb.broker);
    const secret = await tb.addDevice("ws-burst", "json");
    const client = await connectDevice(served.url, { clientId: "ws-burst", username: "ws-burst", password: secret });
    try {
      const received = collect(client);
      await subscribe(client, "devices/ws-burst/down/#");
      const transport = tb.host.transportOf("ws-burst");
      // Large enough that the WebSocket's send buffer fills and writes queue behind each other.
      const padding = "x".repeat(4096);
      const count = 600;
      for (let i = 0; i < count; i++) {
        transport.send(
          { channel: "cmd", frame: { id: `c${i}`, n: "set", a: { i, padding } } },
          { qos: i % 2 === 0 ? 1 : 0 },
        );
      }
      await waitUntil(() => received.length === count, 10_000);
      const json = getCodec("json");
      const ids = received.map((m) => {
        const decoded = json.decodeDown("cmd", m.payload);
        assert.ok(decoded.ok);
        return (decoded.frame as { id: string }).id;
      });
      assert.deepEqual(
        ids,
        Array.from({ length: count }, (_, i) => `c${i}`),
      );
    } finally {
      await endClient(client, true);
      await tb.close();
      await served.close();
    }
  });

  test("writes queued behind a frame join the next one, which ends at the first packet boundary past the bound", () => {
    // A PUBLISH as mqtt-packet writes it: fixed header and topic, then the payload, as separate writes.
    const publish = (n: number, payloadBytes: number): Buffer[] => {
      const whole = mqttPacket.generate({
        cmd: "publish",
        topic: "devices/d/down/cmd",
        payload: Buffer.alloc(payloadBytes, n),
        qos: 0,
        dup: false,
        retain: false,
      });
      return [whole.subarray(0, whole.length - payloadBytes), whole.subarray(whole.length - payloadBytes)];
    };
    const tracker = new PacketSizeTracker(Number.POSITIVE_INFINITY, "server");
    const chunks = Array.from({ length: 40 }, (_, n) => publish(n, 1000)).flat();
    const frames = coalesceFrames(chunks, tracker);
    assert.deepEqual(Buffer.concat(frames), Buffer.concat(chunks), "every byte, in order");
    for (const frame of frames.slice(0, -1)) {
      assert.ok(frame.length >= FRAME_COALESCE_BYTES && frame.length < FRAME_COALESCE_BYTES + 1100);
    }
    const parsed = frames.map((f) => packetsIn(f));
    assert.equal(parsed.flat().length, 40, "each frame holds whole packets");
    assert.ok(frames.length > 1 && frames.length < 40);
    // A single write larger than the bound goes out whole, in one frame.
    assert.deepEqual(
      coalesceFrames(publish(99, FRAME_COALESCE_BYTES * 2), tracker).map((f) => f.length),
      [Buffer.concat(publish(99, FRAME_COALESCE_BYTES * 2)).length],
    );
  });
});
