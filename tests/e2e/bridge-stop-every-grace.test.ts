/**
 * The three close graces of a stop run one after the other (app/bridge/stop-graces.ts): with a client stalled on each
 * (an MQTT WebSocket that never answers its close frame, an agent socket client that stops reading, an HTTP request
 * head that never ends), the stop still completes inside shutdown.timeoutMs, the agents' drain included.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import WebSocket from "ws";
import { createBridge } from "../../app/bridge.ts";
import { stopGraces } from "../../app/bridge/stop-graces.ts";
import { type RawWebSocket, rawWebSocket } from "../broker/raw-websocket.ts";
import { loopbackConfig } from "../support/in-process-bridge.ts";
import { makeTempDir } from "./support/bridge-process.ts";

const TOKEN = "stop-every-grace-token-0123456789";
const dataDir = makeTempDir("bridge-stop-every-grace-");
const cleanups: (() => void)[] = [];
after(() => {
  for (const cleanup of cleanups) cleanup();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test("with a short shutdown.timeoutMs, a client stalled on each close grace still lets the stop finish within it", async () => {
  const timeoutMs = 2000;
  const config = loopbackConfig({ dataDir, apiToken: TOKEN });
  const bridge = await createBridge({ ...config, shutdown: { timeoutMs } }, { logger: pino({ level: "silent" }) });
  const { http } = await bridge.start();
  const port = http?.port ?? 0;
  // An MQTT WebSocket, upgraded and deaf: it never answers the broker's close frame.
  const mqtt: RawWebSocket = await rawWebSocket(port);
  cleanups.push(() => mqtt.destroy());
  // An agent socket client that stops reading.
  await bridge.registry.add("stop-every-grace", { codec: "json" });
  const agentSocket = new WebSocket(`ws://127.0.0.1:${port}/agents/stop-every-grace`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  agentSocket.on("error", () => {});
  cleanups.push(() => agentSocket.terminate());
  await new Promise<void>((resolve) => agentSocket.once("message", () => resolve()));
  agentSocket.pause();
  // An HTTP request whose head never ends.
  const stalled = net.connect(port, "127.0.0.1");
  stalled.on("error", () => {});
  cleanups.push(() => stalled.destroy());
  await new Promise<void>((resolve) => stalled.once("connect", () => resolve()));
  stalled.write("GET /healthz HTTP/1.1\r\nHost: x\r\n");
  await sleep(50);

  const started = performance.now();
  await bridge.stop();
  const tookMs = performance.now() - started;
  const g = stopGraces(timeoutMs);
  // Every grace was waited out, and what is left of the budget was enough for the rest of the stop.
  assert.ok(tookMs >= g.mqttWebSocket + g.agentSockets + g.http - 50, `the stop took ${Math.round(tookMs)} ms`);
  assert.ok(tookMs < timeoutMs, `the stop took ${Math.round(tookMs)} ms, not within shutdown.timeoutMs`);
  assert.notEqual(mqtt.closeCode(), undefined, "the MQTT WebSocket was sent its close frame");
});
