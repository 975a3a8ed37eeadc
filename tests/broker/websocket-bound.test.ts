import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { describe, test } from "node:test";
import WebSocket from "ws";
import { socketsPerListener } from "../../broker/listener-bound.ts";
import { BrokerErrorCode } from "../../broker/index.ts";
import { connectDevice, endClient, startTestBroker } from "./helpers.ts";

/** Opens a WebSocket on the MQTT path that never sends CONNECT; resolves once it is open. */
function openIdle(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, "mqtt");
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

/** The HTTP answer to an upgrade the server refuses: status and body. */
function refusedUpgrade(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, "mqtt");
    ws.once("open", () => {
      ws.terminate();
      reject(new Error("the upgrade was accepted"));
    });
    ws.once("error", () => {});
    ws.once("unexpected-response", (_req, res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
  });
}

describe("MQTT over WebSocket socket bound", () => {
  test("WebSockets beyond maxConnections plus headroom are refused with 503 and a message; freed room takes devices again", async () => {
    const tb = await startTestBroker({ limits: { maxConnections: 1 } });
    const server = http.createServer((_req, res) => res.writeHead(404).end());
    server.on("upgrade", (req, socket, head) => {
      if (!tb.broker.handleUpgrade(req, socket, head)) socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/mqtt`;
    const idle: WebSocket[] = [];
    try {
      const secret = await tb.addDevice("ws-late");
      // WebSockets that never send CONNECT, as a flood would open them.
      for (let i = 0; i < socketsPerListener(1); i++) idle.push(await openIdle(url));
      const refused = await refusedUpgrade(url);
      assert.equal(refused.status, 503);
      assert.match(refused.body, /too many MQTT over WebSocket connections/);
      assert.equal(tb.broker.stats().limitBreaches[BrokerErrorCode.socketLimit], 1);
      const freed = idle.splice(0, 2);
      await Promise.all(freed.map((ws) => new Promise((resolve) => ws.once("close", resolve).close())));
      // The server sees the close a moment after the client does.
      let device: Awaited<ReturnType<typeof connectDevice>> | undefined;
      for (let attempt = 0; device === undefined; attempt++) {
        try {
          device = await connectDevice(url, { clientId: "ws-late", username: "ws-late", password: secret });
        } catch (err) {
          if (attempt >= 20) throw err;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
      await endClient(device);
    } finally {
      for (const ws of idle) ws.terminate();
      await tb.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
