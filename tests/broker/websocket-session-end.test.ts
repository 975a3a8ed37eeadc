import assert from "node:assert/strict";
import { describe, test } from "node:test";
import mqttPacket from "mqtt-packet";
import { ManualClock } from "../support/manual-clock.ts";
import { connectDevice, connectPacket, endClient, serveUpgrades, startTestBroker, waitUntil } from "./helpers.ts";
import { rawWebSocket } from "./raw-websocket.ts";

describe("an MQTT WebSocket session ends when the MQTT session does, not when the WebSocket finishes closing", () => {
  test("a DISCONNECT closes the session as disconnect at once, while the close frame still waits for its answer", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({ clock });
    const server = await serveUpgrades(tb.broker);
    const secret = await tb.addDevice("ws-bye");
    const ws = await rawWebSocket(server.port);
    try {
      ws.send(connectPacket("ws-bye", secret));
      await waitUntil(() => tb.broker.isOnline("ws-bye"));
      ws.send(mqttPacket.generate({ cmd: "disconnect" }));
      await waitUntil(() => ws.closeCode() !== undefined);
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
    const ws = await rawWebSocket(server.port);
    try {
      ws.send(connectPacket("ws-again", secret));
      await waitUntil(() => tb.broker.isOnline("ws-again"));
      ws.send(mqttPacket.generate({ cmd: "disconnect" }));
      await waitUntil(() => ws.closeCode() !== undefined);
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
