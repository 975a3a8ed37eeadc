/**
 * The close frame an MQTT WebSocket gets says why the broker ended its session ([RFC 6455 7.4.1]): clients and proxies
 * log it. 1009 for a packet over the size limit, 1008 for something the client did (a malformed packet, a publish
 * outside its namespace), 1011 for the server's own failure, 1000 for an end MQTT itself foresees.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import mqttPacket from "mqtt-packet";
import { BrokerErrorCode } from "../../broker/errors.ts";
import { closeFrameFor } from "../../broker/listeners/websocket-close-code.ts";
import { getCodec } from "../../codecs/index.ts";
import { BridgeError } from "../../errors/index.ts";
import { connectPacket, publishPacket, serveUpgrades, startTestBroker, type TestBroker, waitUntil } from "./helpers.ts";
import { OPCODE_CLOSE, type RawWebSocket, rawWebSocket } from "./raw-websocket.ts";

const cbor = getCodec("cbor");

/** The status code and reason of the server's close frame. */
function closeFrame(ws: RawWebSocket): { code: number; reason: string } {
  const frame = ws.frames.find((f) => f.opcode === OPCODE_CLOSE);
  assert.ok(frame !== undefined && frame.payload.length >= 2, "a close frame with a status code");
  return { code: frame.payload.readUInt16BE(0), reason: frame.payload.subarray(2).toString("utf8") };
}

describe("the close frame of an MQTT WebSocket session the broker ends", () => {
  let tb: TestBroker;
  let server: Awaited<ReturnType<typeof serveUpgrades>>;
  const sockets: RawWebSocket[] = [];
  before(async () => {
    tb = await startTestBroker({ limits: { maxPayloadBytes: 1024 } });
    server = await serveUpgrades(tb.broker);
  });
  after(async () => {
    for (const ws of sockets) ws.destroy();
    await tb.close();
    await server.close();
  });

  async function online(id: string): Promise<RawWebSocket> {
    const secret = await tb.addDevice(id);
    const ws = await rawWebSocket(server.port);
    sockets.push(ws);
    ws.send(connectPacket(id, secret));
    await waitUntil(() => tb.broker.isOnline(id));
    return ws;
  }

  test("a packet announcing more than the size limit: 1009 (message too big), cut before its body", async () => {
    const ws = await online("ws-huge");
    // The fixed header of a PUBLISH with a remaining length of 100 MB, and nothing else.
    ws.send(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x30]));
    await waitUntil(() => ws.closeCode() !== undefined);
    assert.deepEqual(closeFrame(ws), { code: 1009, reason: "BRIDGE_ERR_PACKET_TOO_LARGE" });
    assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_PACKET_TOO_LARGE, 1);
    await tb.host.waitFor(() => tb.host.closes("ws-huge").length === 1);
    assert.equal(tb.host.closes("ws-huge")[0].reason, "error");
  });

  test("a remaining length of more than four bytes: 1008 (policy violation), cut before aedes parses it", async () => {
    const ws = await online("ws-long-length");
    const stats = tb.broker.stats().limitBreaches;
    ws.send(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01]));
    await waitUntil(() => ws.closeCode() !== undefined);
    assert.deepEqual(closeFrame(ws), { code: 1008, reason: "BRIDGE_ERR_PROTOCOL_VIOLATION" });
    // Counted as the protocol violation it is, not as a packet too large.
    const after = tb.broker.stats().limitBreaches;
    assert.equal(after.BRIDGE_ERR_PROTOCOL_VIOLATION, (stats.BRIDGE_ERR_PROTOCOL_VIOLATION ?? 0) + 1);
    assert.equal(after.BRIDGE_ERR_PACKET_TOO_LARGE, stats.BRIDGE_ERR_PACKET_TOO_LARGE);
  });

  test("a packet only a server sends (PINGRESP): 1008 (policy violation), counted as a protocol violation", async () => {
    const ws = await online("ws-pingresp");
    const before = tb.broker.stats().limitBreaches.BRIDGE_ERR_PROTOCOL_VIOLATION ?? 0;
    ws.send(mqttPacket.generate({ cmd: "pingresp" }));
    await waitUntil(() => ws.closeCode() !== undefined);
    assert.deepEqual(closeFrame(ws), { code: 1008, reason: "BRIDGE_ERR_PROTOCOL_VIOLATION" });
    assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_PROTOCOL_VIOLATION, before + 1);
    await tb.host.waitFor(() => tb.host.closes("ws-pingresp").length === 1);
    assert.equal(tb.host.closes("ws-pingresp")[0].reason, "error");
  });

  test("a malformed packet: 1008 (policy violation)", async () => {
    const ws = await online("ws-malformed");
    // A PUBLISH with QoS 3, which MQTT 3.1.1 does not have ([MQTT-3.3.1-4]).
    ws.send(Buffer.from([0x36, 0x02, 0x00, 0x00]));
    await waitUntil(() => ws.closeCode() !== undefined);
    assert.deepEqual(closeFrame(ws), { code: 1008, reason: "MQTT protocol error" });
  });

  test("a publish outside the device's namespace: 1008 with the refusal's code", async () => {
    const ws = await online("ws-acl");
    ws.send(mqttPacket.generate(publishPacket("devices/other/up/telemetry", Buffer.from("x"), 1)));
    await waitUntil(() => ws.closeCode() !== undefined);
    assert.deepEqual(closeFrame(ws), { code: 1008, reason: "BRIDGE_ERR_ACL_DENIED" });
  });

  test("a message the agent could not store: 1011 (internal error) with the failure's code", async () => {
    const ws = await online("ws-full");
    tb.host.deliverResult = { status: "failed", code: "BRIDGE_ERR_STORAGE_FULL", message: "database full" };
    try {
      const telemetry = cbor.encodeUp("telemetry", { r: { n: 1 } });
      ws.send(mqttPacket.generate(publishPacket("devices/ws-full/up/telemetry", telemetry, 1)));
      await waitUntil(() => ws.closeCode() !== undefined);
    } finally {
      tb.host.deliverResult = { status: "committed" };
    }
    assert.deepEqual(closeFrame(ws), { code: 1011, reason: "BRIDGE_ERR_STORAGE_FULL" });
  });

  test("a session the operator ends: 1000 (normal closure)", async () => {
    const ws = await online("ws-removed");
    tb.broker.endSessions("ws-removed", "removed");
    await waitUntil(() => ws.closeCode() !== undefined);
    assert.deepEqual(closeFrame(ws), { code: 1000, reason: "" });
  });
});

describe("closeFrameFor", () => {
  test("maps how the broker ended a session to its close code, with the broker's error code as the reason", () => {
    const bridge = (code: string) => new BridgeError(code, "why");
    assert.deepEqual(closeFrameFor(undefined), { code: 1000, reason: "" });
    assert.deepEqual(closeFrameFor(null), { code: 1000, reason: "" });
    assert.deepEqual(closeFrameFor(bridge(BrokerErrorCode.packetTooLarge)), {
      code: 1009,
      reason: "BRIDGE_ERR_PACKET_TOO_LARGE",
    });
    assert.deepEqual(closeFrameFor(bridge(BrokerErrorCode.rateLimited)), {
      code: 1008,
      reason: "BRIDGE_ERR_RATE_LIMITED",
    });
    assert.deepEqual(closeFrameFor(bridge(BrokerErrorCode.hostFault)), { code: 1011, reason: "BRIDGE_ERR_HOST_FAULT" });
    assert.deepEqual(closeFrameFor(bridge("BRIDGE_ERR_STORAGE")), { code: 1011, reason: "BRIDGE_ERR_STORAGE" });
    // aedes' own errors (its parser, a keepalive missed) and socket errors carry no code of the broker's.
    assert.deepEqual(closeFrameFor(new Error("keep alive timeout")), { code: 1008, reason: "MQTT protocol error" });
    assert.deepEqual(closeFrameFor(Object.assign(new Error("reset"), { code: "ECONNRESET" })), {
      code: 1008,
      reason: "MQTT protocol error",
    });
  });
});
