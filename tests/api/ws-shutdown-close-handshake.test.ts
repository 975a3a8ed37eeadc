/**
 * Bridge shutdown closes every agent socket with 1001: a client that reads slowly still gets that close frame (the
 * close handshake has a short grace before the socket is cut), and one that never reads is cut once the grace is over.
 * Driven with real ws clients whose sockets are paused while a large message waits to be written to them.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, test } from "node:test";
import WebSocket from "ws";
import { type AgentSocketServer, createAgentSocketServer } from "../../app/ws/index.ts";
import { FakeHost } from "./ws-fake-host.ts";

const TOKEN = "test-token-0123456789abcdef";
/** Far more than loopback's kernel buffers hold, so the close frame waits in the bridge's process behind it. */
const BIG_STATE = { blob: "x".repeat(16 * 1024 * 1024) };

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serve(closeGraceMs: number): Promise<{ host: FakeHost; sockets: AgentSocketServer; url: string }> {
  const host = new FakeHost();
  const sockets = createAgentSocketServer({ host, apiToken: TOKEN, maxBufferedBytes: 64 * 1024 * 1024, closeGraceMs });
  const server: Server = createServer();
  server.on("upgrade", (req, socket, head) => sockets.handleUpgrade(req, socket, head));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/agents/dev-1?token=${TOKEN}`;
  return { host, sockets, url };
}

/** A client that has taken its identity, then stops reading while a large state is written to it. */
async function pausedClientBehindBigState(
  host: FakeHost,
  url: string,
): Promise<{ ws: WebSocket; closed: Promise<number> }> {
  const ws = new WebSocket(url, { maxPayload: 0 });
  cleanups.push(() => ws.terminate());
  ws.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    ws.once("message", () => resolve());
    ws.once("error", reject);
  });
  const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
  ws.pause();
  for (const c of host.connections.values()) c.transport.sendProtocol({ type: "state", state: BIG_STATE });
  return { ws, closed };
}

test("a client that reads slowly at shutdown gets the 1001 close frame, not an abnormal close", async () => {
  const { host, sockets, url } = await serve(5000);
  const client = await pausedClientBehindBigState(host, url);
  const closing = sockets.close();
  // It reads again well within the grace: what waited for it, then the close frame.
  setTimeout(() => client.ws.resume(), 200);
  assert.equal(await client.closed, 1001);
  await closing;
  assert.equal(sockets.size, 0);
  assert.deepEqual(host.closed, ["dev-1"]);
});

test("a client that never reads is cut once the close grace is over, and the agent sees its close", async () => {
  const { host, sockets, url } = await serve(200);
  const client = await pausedClientBehindBigState(host, url);
  const started = performance.now();
  await sockets.close();
  const tookMs = performance.now() - started;
  assert.ok(tookMs >= 150 && tookMs < 2000, `close took ${Math.round(tookMs)} ms for a 200 ms grace`);
  assert.equal(sockets.size, 0);
  assert.deepEqual(host.closed, ["dev-1"]);
  client.ws.resume();
  assert.equal(await client.closed, 1006);
});

test("a client that closes at once does not wait for the grace", async () => {
  const { host, sockets, url } = await serve(10_000);
  const ws = new WebSocket(url);
  cleanups.push(() => ws.terminate());
  await new Promise<void>((resolve) => ws.once("message", () => resolve()));
  const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
  const started = performance.now();
  await sockets.close();
  assert.ok(performance.now() - started < 2000);
  assert.equal(await closed, 1001);
  assert.deepEqual(host.closed, ["dev-1"]);
});

test("closeGraceMs is validated", () => {
  const host = new FakeHost();
  assert.throws(() => createAgentSocketServer({ host, apiToken: TOKEN, closeGraceMs: -1 }), /closeGraceMs/);
  assert.throws(() => createAgentSocketServer({ host, apiToken: TOKEN, closeGraceMs: 1.5 }), /closeGraceMs/);
});
