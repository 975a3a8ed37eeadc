/**
 * The operator HTTP server's close grace fits inside `shutdown.timeoutMs`: a client that stopped in the middle of a
 * request is cut early enough for the agents to drain before `agent-bridge start` forces its exit.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import WebSocket from "ws";
import { createBridge } from "../../app/bridge.ts";
import { loopbackConfig } from "../support/in-process-bridge.ts";
import { makeTempDir } from "./support/bridge-process.ts";

const dataDir = makeTempDir("bridge-stop-http-grace-");
const sockets: net.Socket[] = [];
after(() => {
  for (const s of sockets) s.destroy();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test("with a short shutdown.timeoutMs, a stalled HTTP client is cut within it and the stop completes", async () => {
  const config = loopbackConfig({ dataDir, apiToken: "stop-http-grace-token-0123456789" });
  const bridge = await createBridge(
    { ...config, shutdown: { timeoutMs: 2000 } },
    { logger: pino({ level: "silent" }) },
  );
  const { http } = await bridge.start();
  const socket = net.connect(http?.port ?? 0, "127.0.0.1");
  sockets.push(socket);
  socket.on("error", () => {});
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n"); // a head that never ends
  await sleep(50);
  const started = performance.now();
  await bridge.stop();
  const tookMs = performance.now() - started;
  assert.ok(tookMs < 2000, `the stop took ${Math.round(tookMs)} ms, not within shutdown.timeoutMs (2000 ms)`);
});

test("with a short shutdown.timeoutMs, an agent socket client that stops reading and a stalled HTTP client both fit in it", async () => {
  const config = loopbackConfig({ dataDir, apiToken: "stop-http-grace-token-0123456789" });
  const bridge = await createBridge(
    { ...config, dataDir: `${dataDir}/both`, shutdown: { timeoutMs: 2000 } },
    { logger: pino({ level: "silent" }) },
  );
  const { http } = await bridge.start();
  await bridge.registry.add("stop-grace-1", { codec: "json" });
  const ws = new WebSocket(`ws://127.0.0.1:${http?.port}/agents/stop-grace-1`, {
    headers: { authorization: "Bearer stop-http-grace-token-0123456789" },
  });
  ws.on("error", () => {});
  await new Promise<void>((resolve) => ws.once("message", () => resolve()));
  // It never answers the close frame: its share of the budget runs out and it is cut.
  ws.pause();
  const socket = net.connect(http?.port ?? 0, "127.0.0.1");
  sockets.push(socket);
  socket.on("error", () => {});
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n");
  await sleep(50);
  const started = performance.now();
  await bridge.stop();
  const tookMs = performance.now() - started;
  ws.terminate();
  assert.ok(tookMs < 2000, `the stop took ${Math.round(tookMs)} ms, not within shutdown.timeoutMs (2000 ms)`);
});
