/**
 * The MQTT over WebSocket close grace fits inside `shutdown.timeoutMs`: a client that never answers the close frame is
 * cut early enough for the agents to drain before `agent-bridge start` forces its exit.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { createBridge } from "../../app/bridge.ts";
import { type RawWebSocket, rawWebSocket } from "../broker/raw-websocket.ts";
import { loopbackConfig } from "../support/in-process-bridge.ts";
import { makeTempDir } from "./support/bridge-process.ts";

const dataDir = makeTempDir("bridge-stop-ws-grace-");
const sockets: RawWebSocket[] = [];
after(() => {
  for (const ws of sockets) ws.destroy();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test("with a short shutdown.timeoutMs, an MQTT WebSocket that never answers the close is cut within it", async () => {
  const config = loopbackConfig({ dataDir, apiToken: "stop-ws-grace-token-0123456789ab" });
  const bridge = await createBridge(
    { ...config, shutdown: { timeoutMs: 2000 } },
    { logger: pino({ level: "silent" }) },
  );
  const { http } = await bridge.start();
  // Upgraded, then deaf: it never answers the broker's close frame.
  const ws = await rawWebSocket(http?.port ?? 0);
  sockets.push(ws);
  await sleep(50);
  const started = performance.now();
  await bridge.stop();
  const tookMs = performance.now() - started;
  assert.ok(ws.closeCode() !== undefined, "the client was sent a close frame");
  assert.ok(tookMs < 2000, `the stop took ${Math.round(tookMs)} ms, not within shutdown.timeoutMs (2000 ms)`);
});
