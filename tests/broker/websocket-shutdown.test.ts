import assert from "node:assert/strict";
import { describe, test } from "node:test";
import WebSocket from "ws";
import { WEBSOCKET_CLOSE_TIMEOUT_MS } from "../../broker/listeners/websocket.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { connectPacket, serveUpgrades, startTestBroker, waitUntil } from "./helpers.ts";
import { rawWebSocket } from "./raw-websocket.ts";

/** [RFC 6455 7.4.1] */
const GOING_AWAY = 1001;

describe("MQTT over WebSocket at broker shutdown", () => {
  test("a connected client gets a close frame with 1001 (going away), and its session closes as shutdown", async () => {
    const tb = await startTestBroker();
    const served = await serveUpgrades(tb.broker);
    const secret = await tb.addDevice("ws-shut");
    const ws = new WebSocket(served.url, "mqtt");
    ws.on("error", () => {});
    try {
      await new Promise((resolve) => ws.once("open", resolve));
      const connack = new Promise((resolve) => ws.once("message", resolve));
      ws.send(connectPacket("ws-shut", secret));
      await connack;
      await waitUntil(() => tb.broker.isOnline("ws-shut"));
      const closed = new Promise<{ code: number; reason: string }>((resolve) =>
        ws.once("close", (code, reason) => resolve({ code, reason: reason.toString("utf8") })),
      );
      await tb.close();
      const { code, reason } = await closed;
      assert.equal(code, GOING_AWAY);
      assert.match(reason, /shutting down/);
      assert.deepEqual(
        tb.host.closes("ws-shut").map((c) => c.reason),
        ["shutdown"],
      );
    } finally {
      ws.terminate();
      await served.close();
    }
  });

  test("shutdown waits for a client that never answers the close frame only until the close timeout", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({ clock });
    const served = await serveUpgrades(tb.broker);
    const secret = await tb.addDevice("ws-deaf");
    const ws = await rawWebSocket(served.port);
    try {
      ws.send(connectPacket("ws-deaf", secret));
      await waitUntil(() => tb.broker.isOnline("ws-deaf"));
      let done = false;
      const closing = tb.close().then(() => {
        done = true;
      });
      await waitUntil(() => ws.closeCode() !== undefined, 1000);
      assert.equal(ws.closeCode(), GOING_AWAY);
      // The client never answers and the broker's clock stands still: the broker waits for the answer.
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(done, false);
      await clock.advance(WEBSOCKET_CLOSE_TIMEOUT_MS);
      await waitUntil(() => done, 1000);
      await closing;
      await ws.closed;
    } finally {
      ws.destroy();
      await served.close();
    }
  });

  test("websocket.closeGraceMs bounds that wait: a short stop budget is not spent on a deaf client", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({ clock, websocket: { closeGraceMs: 100 } });
    const served = await serveUpgrades(tb.broker);
    const secret = await tb.addDevice("ws-deaf-short");
    const ws = await rawWebSocket(served.port);
    try {
      ws.send(connectPacket("ws-deaf-short", secret));
      await waitUntil(() => tb.broker.isOnline("ws-deaf-short"));
      let done = false;
      const closing = tb.close().then(() => {
        done = true;
      });
      await waitUntil(() => ws.closeCode() !== undefined, 1000);
      await clock.advance(99);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(done, false);
      await clock.advance(1);
      await waitUntil(() => done, 1000);
      await closing;
      await ws.closed;
    } finally {
      ws.destroy();
      await served.close();
    }
  });
});
