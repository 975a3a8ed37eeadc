import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import net from "node:net";
import { describe, test } from "node:test";
import mqttPacket from "mqtt-packet";
import { ManualClock } from "../support/manual-clock.ts";
import { connectDevice, endClient, serveUpgrades, startTestBroker, waitUntil } from "./helpers.ts";

/** A WebSocket client on a raw socket that sends what it is told and never answers a close frame. */
interface SilentWebSocket {
  /** Sends `packet` in one masked binary frame (a zero mask leaves the payload as it is). */
  send(packet: Buffer): void;
  /** True once the server's close frame arrived. */
  closeFrameReceived(): boolean;
  destroy(): void;
}

async function silentWebSocket(port: number): Promise<SilentWebSocket> {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => {});
  await new Promise((resolve) => socket.once("connect", resolve));
  let received = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
  });
  socket.write(
    "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n` +
      "Sec-WebSocket-Protocol: mqtt\r\n\r\n",
  );
  await waitUntil(() => received.includes("\r\n\r\n"));
  assert.match(received.toString("latin1"), /^HTTP\/1\.1 101 /);
  received = received.subarray(received.indexOf("\r\n\r\n") + 4);
  return {
    send: (packet) => socket.write(Buffer.concat([Buffer.from([0x82, 0x80 | packet.length, 0, 0, 0, 0]), packet])),
    // Server frames are unmasked; every one the broker sends here is under 126 bytes.
    closeFrameReceived: () => {
      for (let at = 0; at + 2 <= received.length; at += 2 + (received[at + 1] & 0x7f)) {
        if ((received[at] & 0x0f) === 0x8) return true;
      }
      return false;
    },
    destroy: () => socket.destroy(),
  };
}

const connectPacket = (clientId: string, password: string): Buffer =>
  mqttPacket.generate({
    cmd: "connect",
    protocolId: "MQTT",
    protocolVersion: 4,
    clean: true,
    keepalive: 30,
    clientId,
    username: clientId,
    password: Buffer.from(password),
  });

describe("an MQTT WebSocket session ends when the MQTT session does, not when the WebSocket finishes closing", () => {
  test("a DISCONNECT closes the session as disconnect at once, while the close frame still waits for its answer", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({ clock });
    const server = await serveUpgrades(tb.broker);
    const secret = await tb.addDevice("ws-bye");
    const ws = await silentWebSocket(server.port);
    try {
      ws.send(connectPacket("ws-bye", secret));
      await waitUntil(() => tb.broker.isOnline("ws-bye"));
      ws.send(mqttPacket.generate({ cmd: "disconnect" }));
      await waitUntil(ws.closeFrameReceived);
      // The client never answers the close frame, and the broker's clock stands still: the WebSocket stays closing.
      await tb.host.waitFor(() => tb.host.closes("ws-bye").length === 1, 1000);
      assert.deepEqual(
        tb.host.closes("ws-bye").map((c) => c.reason),
        ["disconnect"],
      );
      assert.equal(tb.broker.isOnline("ws-bye"), false);
      assert.equal(tb.broker.stats().connectionsClosed.disconnect, 1);
    } finally {
      ws.destroy();
      await tb.close();
      await server.close();
    }
  });

  test("a device that reconnects right after its DISCONNECT closes the old session as disconnect, not takeover", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({ clock });
    const server = await serveUpgrades(tb.broker);
    const secret = await tb.addDevice("ws-again");
    const ws = await silentWebSocket(server.port);
    try {
      ws.send(connectPacket("ws-again", secret));
      await waitUntil(() => tb.broker.isOnline("ws-again"));
      ws.send(mqttPacket.generate({ cmd: "disconnect" }));
      await waitUntil(ws.closeFrameReceived);
      const again = await connectDevice(server.url, { clientId: "ws-again", username: "ws-again", password: secret });
      await endClient(again);
      await tb.host.waitFor(() => tb.host.closes("ws-again").length === 2, 1000);
      assert.deepEqual(
        tb.host.closes("ws-again").map((c) => c.reason),
        ["disconnect", "disconnect"],
      );
    } finally {
      ws.destroy();
      await tb.close();
      await server.close();
    }
  });
});
