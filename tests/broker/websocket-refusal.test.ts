import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import net from "node:net";
import { Duplex } from "node:stream";
import { describe, test } from "node:test";
import mqttPacket from "mqtt-packet";
import WebSocket from "ws";
import { createWebSocketEndpoint, WEBSOCKET_CLOSE_TIMEOUT_MS } from "../../broker/listeners/websocket.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { connectPacket, serveUpgrades, startTestBroker, waitUntil } from "./helpers.ts";

/** The server frames (unmasked, each under 126 bytes) in `bytes`: opcode and payload. */
function serverFrames(bytes: Buffer): Array<{ opcode: number; payload: Buffer }> {
  const frames: Array<{ opcode: number; payload: Buffer }> = [];
  let at = 0;
  while (at + 2 <= bytes.length) {
    const length = bytes[at + 1] & 0x7f;
    if (at + 2 + length > bytes.length) break;
    frames.push({ opcode: bytes[at] & 0x0f, payload: bytes.subarray(at + 2, at + 2 + length) });
    at += 2 + length;
  }
  return frames;
}

describe("MQTT over WebSocket refusals reach the client", () => {
  test("a refused CONNECT reaches a real client as its CONNACK code, then a close frame (1000), not a cut connection", async () => {
    const tb = await startTestBroker();
    const server = await serveUpgrades(tb.broker);
    try {
      await tb.addDevice("ws-refused");
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/mqtt`, "mqtt");
      const parser = mqttPacket.parser({ protocolVersion: 4 });
      const packets: mqttPacket.Packet[] = [];
      parser.on("packet", (p) => packets.push(p));
      ws.on("message", (data: Buffer) => parser.parse(data));
      ws.on("error", () => {});
      const closedWith = new Promise<{ code: number }>((resolve) => ws.once("close", (code) => resolve({ code })));
      ws.once("open", () => ws.send(connectPacket("ws-refused", "not-the-secret")));
      const { code } = await closedWith;
      assert.deepEqual(
        packets.map((p) => (p.cmd === "connack" ? { cmd: p.cmd, returnCode: p.returnCode } : { cmd: p.cmd })),
        [{ cmd: "connack", returnCode: 4 }],
      );
      assert.equal(code, 1000, "closed with a close frame (1006 means the connection was cut without one)");
    } finally {
      await tb.close();
      await server.close();
    }
  });

  test("a client that never answers the close frame is cut after the close timeout, not before", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({ clock });
    const server = await serveUpgrades(tb.broker);
    await tb.addDevice("ws-silent");
    const socket = net.connect(server.port, "127.0.0.1");
    socket.on("error", () => {});
    const connected = new Promise((resolve) => socket.once("connect", resolve));
    try {
      let received = Buffer.alloc(0);
      let ended = false;
      socket.on("data", (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
      });
      socket.on("end", () => {
        ended = true;
      });
      await connected;
      socket.write(
        "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n` +
          "Sec-WebSocket-Protocol: mqtt\r\n\r\n",
      );
      await waitUntil(() => received.includes("\r\n\r\n"));
      assert.match(received.toString("latin1"), /^HTTP\/1\.1 101 /);
      received = received.subarray(received.indexOf("\r\n\r\n") + 4);
      // One masked binary frame (a zero mask leaves the payload as it is) carrying a CONNECT with a wrong secret.
      const connect = connectPacket("ws-silent", "not-the-secret");
      socket.write(Buffer.concat([Buffer.from([0x82, 0x80 | connect.length, 0, 0, 0, 0]), connect]));
      await waitUntil(() => serverFrames(received).some((f) => f.opcode === 0x8));
      const frames = serverFrames(received);
      // The packet may come in several binary frames (MQTT over WebSocket allows it); the close frame comes last.
      const data = Buffer.concat(frames.filter((f) => f.opcode === 0x2).map((f) => f.payload));
      assert.deepEqual(data, Buffer.from([0x20, 0x02, 0x00, 0x04]), "CONNACK 4");
      assert.deepEqual(frames.at(-1), { opcode: 0x8, payload: Buffer.from([0x03, 0xe8]) }, "close frame, 1000");
      // The client never sends its own close frame: the server waits for it, but only so long.
      await clock.advance(WEBSOCKET_CLOSE_TIMEOUT_MS - 1);
      // Time for a FIN to cross loopback, had the server sent one: a correct server stays silent however long this is.
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(ended, false, "the server waits for the client's close frame");
      await clock.advance(1);
      await waitUntil(() => ended);
    } finally {
      socket.destroy();
      await tb.close();
      await server.close();
    }
  });

  test("an upgrade refused with 503 is destroyed only once the answer was written, not while it is still queued", async () => {
    const endpoint = createWebSocketEndpoint({
      path: "/mqtt",
      maxPayloadBytes: 1024,
      maxSockets: 0,
      accept: () => assert.fail("no WebSocket may be accepted"),
    });
    // A socket whose writes complete a moment later (a TLS socket, a full send buffer): what it still holds when it is
    // destroyed never reaches the peer, as with a real socket.
    let delivered = "";
    const socket = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        setImmediate(() => {
          if (!socket.destroyed) delivered += chunk.toString("latin1");
          callback();
        });
      },
    });
    const closed = new Promise((resolve) => socket.once("close", resolve));
    const req = { url: "/mqtt", headers: {}, socket: { remoteAddress: "192.0.2.1" } } as unknown as IncomingMessage;
    try {
      assert.equal(endpoint.handleUpgrade(req, socket, Buffer.alloc(0)), true);
      await closed;
      assert.match(delivered, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
      assert.match(delivered, /too many MQTT over WebSocket connections/);
    } finally {
      await endpoint.close();
    }
  });
});
