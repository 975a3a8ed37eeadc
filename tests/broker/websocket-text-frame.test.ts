/**
 * MQTT over WebSocket carries its packets in binary frames only: "If any other type of data frame is received the
 * recipient MUST close the Network Connection" [MQTT-6.0.0-1]. A text frame is a protocol violation, closed with 1003
 * (unsupported data, [RFC 6455 7.4.1]) whatever bytes it holds. Before, a text frame whose bytes happened to be valid
 * UTF-8 (an ASCII topic, a JSON payload) was read as MQTT like a binary one.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import mqttPacket from "mqtt-packet";
import WebSocket from "ws";
import { PROTOCOL_VIOLATION_WARNING } from "../../broker/packet-refusals.ts";
import { getCodec } from "../../codecs/index.ts";
import { connectPacket, publishPacket, serveUpgrades, startTestBroker, waitUntil, warned } from "./helpers.ts";

const json = getCodec("json");

/** An open WebSocket client on `url` (subprotocol "mqtt"), the packets it receives and how it is closed. */
async function openClient(url: string) {
  const ws = new WebSocket(url, "mqtt");
  ws.on("error", () => {});
  const packets: mqttPacket.Packet[] = [];
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  parser.on("packet", (p) => packets.push(p));
  ws.on("message", (data: Buffer) => parser.parse(data));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once("close", (code, reason) => resolve({ code, reason: reason.toString("utf8") })),
  );
  await new Promise((resolve) => ws.once("open", resolve));
  return { ws, packets, closed };
}

describe("an MQTT WebSocket client sending a text frame", () => {
  test("a PUBLISH in a text frame: 1003, the session ends as error, nothing reaches the agent", async () => {
    const tb = await startTestBroker();
    const server = await serveUpgrades(tb.broker);
    try {
      const secret = await tb.addDevice("ws-text-publish");
      const { ws, packets, closed } = await openClient(server.url);
      ws.send(connectPacket("ws-text-publish", secret));
      await waitUntil(() => tb.broker.isOnline("ws-text-publish"));
      const before = tb.broker.stats().limitBreaches.BRIDGE_ERR_PROTOCOL_VIOLATION ?? 0;
      // A JSON payload under an ASCII topic, message id 0x2021: every byte is ASCII, so ws itself takes the text frame.
      const telemetry = json.encodeUp("telemetry", { r: { n: 1 } });
      const publish = mqttPacket.generate(
        publishPacket("devices/ws-text-publish/up/telemetry/json", telemetry, 0x2021),
      );
      ws.send(publish, { binary: false });
      assert.deepEqual(await closed, { code: 1003, reason: "BRIDGE_ERR_PROTOCOL_VIOLATION" });
      assert.deepEqual(
        packets.map((p) => p.cmd),
        ["connack"],
        "no PUBACK",
      );
      await tb.host.waitFor(() => tb.host.closes("ws-text-publish").length === 1);
      assert.equal(tb.host.closes("ws-text-publish")[0].reason, "error");
      assert.equal(tb.host.deliveries("ws-text-publish").length, 0);
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_PROTOCOL_VIOLATION, before + 1);
    } finally {
      await tb.close();
      await server.close();
    }
  });

  test("a CONNECT in a text frame opens no session", async () => {
    // Anonymous, so the CONNECT has no credential flags and all its bytes are ASCII (valid UTF-8).
    const tb = await startTestBroker({ anonymous: true });
    const server = await serveUpgrades(tb.broker);
    try {
      const { ws, packets, closed } = await openClient(server.url);
      const connect = mqttPacket.generate({
        cmd: "connect",
        protocolId: "MQTT",
        protocolVersion: 4,
        clean: true,
        keepalive: 30,
        clientId: "ws-text-connect",
      });
      ws.send(connect, { binary: false });
      assert.deepEqual(await closed, { code: 1003, reason: "BRIDGE_ERR_PROTOCOL_VIOLATION" });
      assert.deepEqual(packets, [], "no CONNACK");
      assert.equal(tb.host.opens("ws-text-connect").length, 0);
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_PROTOCOL_VIOLATION, 1);
      assert.deepEqual(
        warned(tb, PROTOCOL_VIOLATION_WARNING).map((line) => line.packet),
        ["WebSocket text frame"],
      );
    } finally {
      await tb.close();
      await server.close();
    }
  });
});
