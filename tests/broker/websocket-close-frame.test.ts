import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { WEBSOCKET_CLOSE_TIMEOUT_MS } from "../../broker/listeners/websocket.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { serveUpgrades, startTestBroker, waitUntil } from "./helpers.ts";
import { connectPacket, rawWebSocket } from "./raw-websocket.ts";

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
});
