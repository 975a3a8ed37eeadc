/**
 * Closing the operator HTTP server during a graceful stop: requests in progress get their answers, and a client that
 * stops sending in the middle of a request (a head or a body that never ends) cannot hold the stop open.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { after, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { createHttpServer, type HttpServer } from "../../app/http/index.ts";

const logger = pino({ level: "silent" });
const sockets: net.Socket[] = [];
after(() => {
  for (const s of sockets) s.destroy();
});

function server(closeGraceMs: number): HttpServer {
  return createHttpServer({
    host: "127.0.0.1",
    port: 0,
    logger,
    readiness: () => ({ ready: true, phase: "ready", listeners: {} }),
    upgradeRoutes: [],
    closeGraceMs,
  });
}

/** Opens a socket, writes `text` and resolves once written; `closed` resolves when the server ends the socket. */
async function stalledClient(port: number, text: string): Promise<{ closed: Promise<void> }> {
  const socket = net.connect(port, "127.0.0.1");
  sockets.push(socket);
  socket.on("error", () => {});
  socket.resume();
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  await new Promise<void>((resolve) => socket.write(text, () => resolve()));
  return { closed };
}

/** Resolves with `promise`'s outcome, or with "pending" when it has not settled within `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | "pending"> {
  const timer = new AbortController();
  try {
    return await Promise.race([promise, sleep(ms, "pending" as const, { signal: timer.signal })]);
  } finally {
    timer.abort();
  }
}

describe("operator HTTP server close", () => {
  test("a client that stops in the middle of a request head or body is cut after closeGraceMs", async () => {
    const http = server(50);
    const { port } = await http.listen();
    // Neither is idle to Node (a request has begun), so closing waited for Node's own timeouts: 60 s for the head,
    // 300 s for the body, past any shutdown.timeoutMs, and the agents were never drained.
    const head = await stalledClient(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
    const body = await stalledClient(
      port,
      "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    );
    await sleep(50); // both requests have reached the server's parser
    assert.notEqual(await within(http.close(), 5000), "pending", "close() returned");
    assert.notEqual(await within(head.closed, 1000), "pending", "the stalled head's socket was closed");
    assert.notEqual(await within(body.closed, 1000), "pending", "the stalled body's socket was closed");
  });

  test("a request in progress when close() begins still gets its answer within the grace", async () => {
    const http = server(5000);
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started: () => void = () => {};
    const inHandler = new Promise<void>((resolve) => {
      started = resolve;
    });
    http.app.get("/slow", async () => {
      started();
      await released;
      return { done: true };
    });
    const { port } = await http.listen();
    const response = fetch(`http://127.0.0.1:${port}/slow`);
    await inHandler;
    const closing = http.close();
    release();
    const answer = await response;
    assert.equal(answer.status, 200);
    assert.deepEqual(await answer.json(), { done: true });
    assert.notEqual(await within(closing, 5000), "pending", "close() returned once the request was answered");
  });
});
