import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { describe, test } from "node:test";
import mqttPacket from "mqtt-packet";
import { WEBSOCKET_CLOSE_TIMEOUT_MS } from "../../broker/listeners/websocket.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { getCodec } from "../../codecs/index.ts";
import { connectPacket, publishPacket, serveUpgrades, startTestBroker, waitUntil } from "./helpers.ts";
import { rawWebSocket } from "./raw-websocket.ts";

describe("an MQTT WebSocket client's close frame", () => {
  test("ends its session at once even when the client keeps its TCP connection open, which is cut after the close timeout", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({ clock });
    const served = await serveUpgrades(tb.broker);
    const secret = await tb.addDevice("ws-half-open");
    // A client gone silent right after its close frame: it never ends its side of the TCP connection.
    const ws = await rawWebSocket(served.port, "/mqtt", { halfOpen: true });
    try {
      ws.send(connectPacket("ws-half-open", secret));
      await waitUntil(() => tb.broker.isOnline("ws-half-open"));
      ws.sendClose(1000);
      await waitUntil(() => ws.closeCode() !== undefined, 1000);
      // ws answered the close frame and ended its side; the broker's clock stands still.
      await tb.host.waitFor(() => tb.host.closes("ws-half-open").length === 1, 1000);
      assert.deepEqual(
        tb.host.closes("ws-half-open").map((c) => c.reason),
        ["disconnect"],
      );
      assert.equal(tb.broker.isOnline("ws-half-open"), false);
      // The TCP connection is not held past the close timeout (ws alone waits 30 s for the client's side to end).
      let cut = false;
      void ws.closed.then(() => {
        cut = true;
      });
      await clock.advance(WEBSOCKET_CLOSE_TIMEOUT_MS);
      // A write to a connection the server cut is answered with a reset.
      await waitUntil(() => {
        if (!cut) ws.send(Buffer.from([0xc0, 0x00]));
        return cut;
      }, 1000);
    } finally {
      ws.destroy();
      await tb.close();
      await served.close();
    }
  });

  test("comes after everything the client sent before it: its PUBLISH reaches the agent, its DISCONNECT keeps the last will from being published", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({ clock });
    const served = await serveUpgrades(tb.broker);
    const id = "ws-last-words";
    const secret = await tb.addDevice(id);
    const ws = await rawWebSocket(served.port, "/mqtt", { halfOpen: true });
    try {
      ws.send(connectPacket(id, secret, `devices/${id}/up/telemetry`));
      await waitUntil(() => tb.broker.isOnline(id));
      const frame = getCodec("cbor").encodeUp("telemetry", { r: { n: 1 } });
      ws.send(mqttPacket.generate(publishPacket(`devices/${id}/up/telemetry`, frame, 1)));
      ws.send(mqttPacket.generate({ cmd: "disconnect" }));
      ws.sendClose(1000);
      await tb.host.waitFor(() => tb.host.closes(id).length === 1, 1000);
      assert.deepEqual(
        tb.host.events.filter((e) => e.type !== "open").map((e) => (e.type === "deliver" ? e.message.frame : e.reason)),
        [{ r: { n: 1 } }, "disconnect"],
      );
    } finally {
      ws.destroy();
      await tb.close();
      await served.close();
    }
  });
});

/**
 * A device online over WebSocket that stopped reading, through an HTTP server of the test's own so that it sees the
 * server's socket: down frames fill the kernel's buffers until the broker's writes to it wait in that socket. The
 * broker's clock stands still.
 */
async function deviceWithStuckWrites(id: string) {
  const clock = new ManualClock();
  const tb = await startTestBroker({ clock });
  const upgraded: Duplex[] = [];
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  server.on("upgrade", (req, socket, head) => {
    upgraded.push(socket);
    if (!tb.broker.handleUpgrade(req, socket, head)) socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const secret = await tb.addDevice(id);
  const ws = await rawWebSocket((server.address() as AddressInfo).port, "/mqtt", { halfOpen: true });
  ws.send(connectPacket(id, secret));
  await waitUntil(() => tb.broker.isOnline(id));
  ws.send(
    mqttPacket.generate({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: `devices/${id}/down/#`, qos: 0 }] }),
  );
  await waitUntil(() => ws.packets.some((p) => p.cmd === "suback"));
  ws.stopReading();
  const transport = tb.host.transportOf(id);
  const text = "x".repeat(32 * 1024);
  await waitUntil(() => {
    for (let seq = 0; seq < 16; seq++)
      transport.send({ channel: "reason", frame: { id: "q1", seq, text } }, { qos: 0 });
    return (upgraded[0]?.writableLength ?? 0) > 0;
  });
  return {
    clock,
    tb,
    ws,
    /** Resolves once the server cut the connection (a write to it is answered with a reset). */
    async cut(): Promise<void> {
      let gone = false;
      void ws.closed.then(() => {
        gone = true;
      });
      await waitUntil(() => {
        if (!gone) ws.send(Buffer.from([0xc0, 0x00]));
        return gone;
      }, 1000);
    },
    async close(): Promise<void> {
      ws.destroy();
      await tb.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe("an MQTT WebSocket client that stopped reading", () => {
  test("ends its session at its close frame, though the broker's answer cannot leave, and is cut after the close timeout", async () => {
    const stuck = await deviceWithStuckWrites("ws-stuck-close");
    try {
      stuck.ws.sendClose(1000);
      // ws read the close frame, but its answer waits behind the frames the client does not read: the server's side of
      // the connection never ends, and ws would wait 30 s (its own bound) before it cut it.
      await stuck.tb.host.waitFor(() => stuck.tb.host.closes("ws-stuck-close").length === 1, 1000);
      assert.equal(stuck.tb.broker.isOnline("ws-stuck-close"), false);
      await stuck.clock.advance(WEBSOCKET_CLOSE_TIMEOUT_MS);
      await stuck.cut();
    } finally {
      await stuck.close();
    }
  });

  test("ends its session when it ends its side of the TCP connection without a close frame, and is cut after the close timeout", async () => {
    const stuck = await deviceWithStuckWrites("ws-stuck-fin");
    try {
      stuck.ws.end();
      await stuck.tb.host.waitFor(() => stuck.tb.host.closes("ws-stuck-fin").length === 1, 1000);
      assert.equal(stuck.tb.broker.isOnline("ws-stuck-fin"), false);
      await stuck.clock.advance(WEBSOCKET_CLOSE_TIMEOUT_MS);
      await stuck.cut();
    } finally {
      await stuck.close();
    }
  });
});
