/**
 * The three close waits of a stop overlap under one deadline (app/bridge/stop-graces.ts): with a client stalled on
 * each (an MQTT WebSocket that never answers its close frame, an agent socket client that stops reading, an HTTP
 * request head that never ends), the agents still get the rest of shutdown.timeoutMs to drain. The agent behind the
 * stalled agent socket has an `onClose` that only starts when that socket is cut and takes a while: it finishes and
 * commits, and the whole stop ends within the budget.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import { pino } from "pino";
import WebSocket from "ws";
import { createBridge } from "../../app/bridge.ts";
import { agentDatabaseFile } from "../../app/bridge/layout.ts";
import { stopGraces } from "../../app/bridge/stop-graces.ts";
import { type RawWebSocket, rawWebSocket } from "../broker/raw-websocket.ts";
import { loopbackConfig } from "../support/in-process-bridge.ts";
import { makeTempDir } from "./support/bridge-process.ts";
import { SLOW_CLOSE_MS } from "./support/slow-close-agent.ts";

const TOKEN = "stop-every-grace-token-0123456789";
const AGENT_ID = "slow-close-1";
const dataDir = makeTempDir("bridge-stop-every-grace-");
const cleanups: (() => void)[] = [];
after(() => {
  for (const cleanup of cleanups) cleanup();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test("with a short shutdown.timeoutMs and a client stalled on each close wait, a slow onClose still finishes within it", async () => {
  const timeoutMs = 2000;
  const g = stopGraces(timeoutMs);
  // Run one after the other, the waits and the onClose the agent socket's cut starts would not fit in the budget.
  assert.ok(g.mqttWebSocket + g.agentSockets + g.http + SLOW_CLOSE_MS > timeoutMs);
  const config = loopbackConfig({ dataDir, apiToken: TOKEN });
  const module = fileURLToPath(new URL("./support/slow-close-agent.ts", import.meta.url));
  const bridge = await createBridge(
    {
      ...config,
      agents: { ...config.agents, classes: [{ pattern: "slow-close-*", module, export: "SlowCloseAgent" }] },
      shutdown: { timeoutMs },
    },
    { logger: pino({ level: "silent" }) },
  );
  const { http } = await bridge.start();
  const port = http?.port ?? 0;
  // An MQTT WebSocket, upgraded and deaf: it never answers the broker's close frame.
  const mqtt: RawWebSocket = await rawWebSocket(port);
  cleanups.push(() => mqtt.destroy());
  // An agent socket client that stops reading: its agent's onClose starts only when its socket is cut.
  await bridge.registry.add(AGENT_ID, { codec: "json" });
  const agentSocket = new WebSocket(`ws://127.0.0.1:${port}/agents/${AGENT_ID}`, {
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
  assert.ok(tookMs < timeoutMs, `the stop took ${Math.round(tookMs)} ms, not within shutdown.timeoutMs`);
  // The agent socket was cut at its grace, and its agent's onClose ran in full after that.
  assert.ok(tookMs >= g.agentSockets + SLOW_CLOSE_MS - 50, `the stop took ${Math.round(tookMs)} ms`);
  assert.notEqual(mqtt.closeCode(), undefined, "the MQTT WebSocket was sent its close frame");
  const db = new Database(agentDatabaseFile(config.dataDir, AGENT_ID), { readonly: true });
  try {
    const rows = db.prepare("SELECT connection, reason FROM closes").all();
    assert.equal(rows.length, 1, "the slow onClose committed its row before the databases closed");
  } finally {
    db.close();
  }
});

test("clients that answer their close frame see 1001 while the HTTP server closes at the same time, and the stop does not wait out a grace", async () => {
  const timeoutMs = 8000;
  const config = loopbackConfig({ dataDir: `${dataDir}/answering`, apiToken: TOKEN });
  const bridge = await createBridge({ ...config, shutdown: { timeoutMs } }, { logger: pino({ level: "silent" }) });
  const { http } = await bridge.start();
  const port = http?.port ?? 0;
  const opened = (ws: WebSocket): Promise<void> =>
    new Promise((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
  const closeCode = (ws: WebSocket): Promise<number> =>
    new Promise((resolve) => ws.once("close", (code) => resolve(code)));
  const mqtt = new WebSocket(`ws://127.0.0.1:${port}/mqtt`, "mqtt");
  cleanups.push(() => mqtt.terminate());
  await opened(mqtt);
  await bridge.registry.add("answering-1", { codec: "json" });
  const agentSocket = new WebSocket(`ws://127.0.0.1:${port}/agents/answering-1`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  cleanups.push(() => agentSocket.terminate());
  await opened(agentSocket);
  const codes = Promise.all([closeCode(mqtt), closeCode(agentSocket)]);

  const started = performance.now();
  await bridge.stop();
  const tookMs = performance.now() - started;
  assert.deepEqual(await codes, [1001, 1001]);
  assert.ok(tookMs < stopGraces(timeoutMs).agentSockets, `the stop took ${Math.round(tookMs)} ms`);
});
