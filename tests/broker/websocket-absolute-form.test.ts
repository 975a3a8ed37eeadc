/**
 * MQTT over WebSocket with the request target in absolute form (`GET http://host:port/mqtt HTTP/1.1`), as some
 * forward proxies send it: RFC 9112 section 3.2.2 says a server MUST accept it, so the endpoint matches on the
 * target's path, whatever its form.
 */
import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { Duplex } from "node:stream";
import { after, before, describe, test } from "node:test";
import { connectPacket, serveUpgrades, startTestBroker, type TestBroker, waitUntil } from "./helpers.ts";
import { type RawWebSocket, rawWebSocket } from "./raw-websocket.ts";

describe("MQTT over WebSocket, request target in absolute form", () => {
  let tb: TestBroker;
  let server: Awaited<ReturnType<typeof serveUpgrades>>;
  const sockets: RawWebSocket[] = [];
  before(async () => {
    tb = await startTestBroker();
    server = await serveUpgrades(tb.broker);
  });
  after(async () => {
    for (const ws of sockets) ws.destroy();
    await tb.close();
    await server.close();
  });

  test("GET http://host:port/mqtt upgrades (101) and the device's CONNECT is accepted", async () => {
    const ws = await rawWebSocket(server.port, `http://127.0.0.1:${server.port}/mqtt`);
    sockets.push(ws);
    const secret = await tb.addDevice("ws-absolute-1");
    ws.send(connectPacket("ws-absolute-1", secret));
    await waitUntil(() => ws.packets.some((p) => p.cmd === "connack"));
    const connack = ws.packets.find((p) => p.cmd === "connack");
    assert.equal(connack?.cmd === "connack" ? connack.returnCode : undefined, 0);
  });

  test("an absolute-form target with a query string upgrades too", async () => {
    const ws = await rawWebSocket(server.port, `http://127.0.0.1:${server.port}/mqtt?client=a`);
    sockets.push(ws);
  });

  test("an absolute-form target naming another path is left to the caller, as its origin form is", () => {
    for (const url of ["http://127.0.0.1/other", "http://127.0.0.1/mqtt/more", "/other"]) {
      const socket = new Duplex({ read() {}, write: (_chunk, _encoding, done) => done() });
      const request = { url, headers: {}, socket } as unknown as IncomingMessage;
      assert.equal(tb.broker.handleUpgrade(request, socket, Buffer.alloc(0)), false, url);
      assert.equal(socket.destroyed, false, `${url}: the socket is untouched`);
      socket.destroy();
    }
  });
});
