/**
 * The operator HTTP server bounds what a slow client may hold: a request head and a whole request must arrive in
 * time, an idle keep-alive connection is closed, and connections are capped. Upgraded WebSockets (MQTT over
 * WebSocket, agent clients) live past every one of those timeouts, and count against the cap.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { after, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import WebSocket, { WebSocketServer } from "ws";
import {
  createHttpServer,
  HTTP_SERVER_DEFAULTS,
  type HttpServer,
  type HttpServerOptions,
} from "../../app/http/index.ts";
import { capturingLogger } from "../support/capturing-logger.ts";

const silent = pino({ level: "silent" });
const servers: HttpServer[] = [];
const sockets: Array<net.Socket | WebSocket> = [];
after(async () => {
  for (const s of sockets) s instanceof WebSocket ? s.terminate() : s.destroy();
  for (const s of servers) await s.close();
});

/** An echo WebSocket endpoint at `/echo`, as `/mqtt` and `/agents/{id}` take over their sockets. */
function echoRoute(): HttpServerOptions["upgradeRoutes"][number] {
  const wss = new WebSocketServer({ noServer: true });
  return {
    name: "echo",
    match: (p) => p === "/echo",
    handle: (req, socket, head) =>
      wss.handleUpgrade(req, socket, head, (ws) => ws.on("message", (data) => ws.send(String(data)))),
  };
}

async function start(options: Partial<HttpServerOptions> = {}): Promise<{ server: HttpServer; port: number }> {
  const server = createHttpServer({
    host: "127.0.0.1",
    port: 0,
    logger: silent,
    readiness: () => ({ ready: true, phase: "ready", listeners: {} }),
    upgradeRoutes: [echoRoute()],
    ...options,
  });
  servers.push(server);
  const { port } = await server.listen();
  return { server, port };
}

/** Opens a raw connection; resolves once connected. `text()` is what came back; `closed` resolves on close. */
async function raw(port: number): Promise<{ socket: net.Socket; text: () => string; closed: Promise<number> }> {
  const socket = net.connect(port, "127.0.0.1");
  sockets.push(socket);
  socket.on("error", () => {});
  let text = "";
  socket.setEncoding("utf8");
  socket.on("data", (chunk: string) => {
    text += chunk;
  });
  const opened = performance.now();
  const closed = new Promise<number>((resolve) => socket.once("close", () => resolve(performance.now() - opened)));
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  return { socket, text: () => text, closed };
}

async function echo(ws: WebSocket, text: string): Promise<string> {
  const reply = new Promise<string>((resolve) => ws.once("message", (data) => resolve(String(data))));
  ws.send(text);
  return reply;
}

describe("operator HTTP server: slow clients", () => {
  test("defaults are set on the server, not Node's or fastify's (60 s head, no request limit, 72 s keep-alive)", async () => {
    assert.deepEqual(
      {
        headersTimeoutMs: HTTP_SERVER_DEFAULTS.headersTimeoutMs,
        requestTimeoutMs: HTTP_SERVER_DEFAULTS.requestTimeoutMs,
        keepAliveTimeoutMs: HTTP_SERVER_DEFAULTS.keepAliveTimeoutMs,
        maxConnections: HTTP_SERVER_DEFAULTS.maxConnections,
      },
      { headersTimeoutMs: 15_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 5_000, maxConnections: 12_288 },
    );
    const { server } = await start();
    const node = server.app.server;
    assert.equal(node.headersTimeout, 15_000);
    assert.equal(node.requestTimeout, 30_000);
    assert.equal(node.keepAliveTimeout, 5_000);
    assert.equal(node.maxConnections, 12_288);
  });

  test("a head that never ends gets a 408 and its connection closed within headersTimeoutMs", async () => {
    const { port } = await start({ headersTimeoutMs: 200, requestTimeoutMs: 5000 });
    const client = await raw(port);
    client.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    const tookMs = await client.closed;
    assert.match(client.text(), /^HTTP\/1\.1 408 /);
    assert.ok(tookMs < 2000, `closed after ${Math.round(tookMs)} ms`);
  });

  test("a body that never ends gets a 408 and its connection closed within requestTimeoutMs", async () => {
    const { port } = await start({ headersTimeoutMs: 200, requestTimeoutMs: 400 });
    const client = await raw(port);
    client.socket.write(
      "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    );
    const tookMs = await client.closed;
    assert.match(client.text(), /^HTTP\/1\.1 408 /);
    assert.ok(tookMs < 2500, `closed after ${Math.round(tookMs)} ms`);
  });

  test("an idle keep-alive connection is closed after keepAliveTimeoutMs", async () => {
    const { port } = await start({ keepAliveTimeoutMs: 200 });
    const client = await raw(port);
    client.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    const tookMs = await client.closed;
    assert.match(client.text(), /^HTTP\/1\.1 200 /);
    assert.ok(tookMs < 2000, `closed after ${Math.round(tookMs)} ms`);
  });

  test("an upgraded WebSocket outlives every timeout and still counts against maxConnections", async () => {
    const { logger, lines } = capturingLogger("warn");
    const { port } = await start({
      logger,
      headersTimeoutMs: 100,
      requestTimeoutMs: 150,
      keepAliveTimeoutMs: 100,
      maxConnections: 2,
    });
    const ws = new WebSocket(`ws://127.0.0.1:${port}/echo`);
    sockets.push(ws);
    await new Promise((resolve) => ws.once("open", resolve));
    await sleep(1200);
    assert.equal(ws.readyState, WebSocket.OPEN);
    assert.equal(await echo(ws, "still here"), "still here");

    // The WebSocket and one more connection fill the cap; a third is closed as it arrives, before any byte is read.
    const second = await raw(port);
    const third = await raw(port);
    await third.closed;
    assert.equal(third.text(), "");
    second.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    await second.closed;
    assert.match(second.text(), /^HTTP\/1\.1 200 /);
    const warned = lines.filter((l) => l.maxConnections === 2);
    assert.equal(warned.length, 1, "the first refused connection is logged");
    assert.equal(ws.readyState, WebSocket.OPEN);
  });

  test("options are validated as the server is built", () => {
    const base = {
      host: "127.0.0.1",
      port: 0,
      logger: silent,
      readiness: () => ({ ready: true, phase: "ready", listeners: {} }),
      upgradeRoutes: [],
    };
    assert.throws(() => createHttpServer({ ...base, headersTimeoutMs: 0 }), /headersTimeoutMs/);
    assert.throws(() => createHttpServer({ ...base, requestTimeoutMs: 1.5 }), /requestTimeoutMs/);
    assert.throws(() => createHttpServer({ ...base, keepAliveTimeoutMs: -1 }), /keepAliveTimeoutMs/);
    assert.throws(() => createHttpServer({ ...base, maxConnections: 0 }), /maxConnections/);
    assert.throws(
      () => createHttpServer({ ...base, headersTimeoutMs: 2000, requestTimeoutMs: 1000 }),
      /headersTimeoutMs must not exceed requestTimeoutMs/,
    );
  });
});
