/**
 * The bridge bounds what it buffers for a WebSocket agent client that stopped reading (`http.agentSockets`): the
 * client is closed with 1013 and `/metrics` counts it, while the agent and its other clients go on.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import { after, test } from "node:test";
import WebSocket from "ws";
import { createBridge } from "../../app/bridge.ts";
import { capturingLogger } from "../support/capturing-logger.ts";
import { loopbackConfig } from "../support/in-process-bridge.ts";
import { makeTempDir } from "./support/bridge-process.ts";

const TOKEN = "slow-consumer-token-0123456789";
const dataDir = makeTempDir("agent-socket-slow-");
after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

function open(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  return new Promise((resolve, reject) => {
    // The identity is the first message, once the agent connection is open.
    ws.once("message", () => resolve(ws));
    ws.once("error", reject);
  });
}

test("a WebSocket agent client that stops reading is closed with 1013 past http.agentSockets.maxBufferedBytes, and counted", async () => {
  const config = loopbackConfig({ dataDir, apiToken: TOKEN });
  const { logger, lines } = capturingLogger("warn");
  const bridge = await createBridge(
    { ...config, http: { ...config.http, agentSockets: { maxBufferedBytes: 64 * 1024 } } },
    { logger },
  );
  const clients: WebSocket[] = [];
  try {
    const { http } = await bridge.start();
    assert.equal((await bridge.registry.add("dev-1", { codec: "json" })).status, "created");
    const url = `ws://127.0.0.1:${http?.port}/agents/dev-1?token=${TOKEN}`;
    const writer = await open(url);
    const slow = await open(url);
    clients.push(writer, slow);
    const slowClosed = new Promise<number>((resolve) => slow.once("close", (code) => resolve(code)));
    slow.pause();

    // Each state change is broadcast to the other client; the writer waits for nothing, as a busy agent would not.
    const blob = "s".repeat(48 * 1024);
    let breached = false;
    for (let i = 0; i < 2000 && !breached; i++) {
      writer.send(JSON.stringify({ type: "cf_agent_state", state: { i, blob } }));
      if (i % 16 === 15) {
        const metrics = await fetch(`http://127.0.0.1:${http?.port}/metrics`, {
          headers: { authorization: `Bearer ${TOKEN}` },
        });
        breached = /bridge_limit_breaches_total\{code="BRIDGE_ERR_WS_SLOW_CONSUMER"\} 1\b/.test(await metrics.text());
      }
    }
    assert.ok(breached, "the slow client was counted in bridge_limit_breaches_total");
    const warned = lines.filter((l) => l.code === "BRIDGE_ERR_WS_SLOW_CONSUMER");
    assert.equal(warned.length, 1);
    assert.equal(warned[0]?.maxBufferedBytes, 64 * 1024, "the configured bound applied");
    assert.equal(warned[0]?.agentId, "dev-1");

    // The agent still serves its other client.
    writer.send(JSON.stringify({ type: "rpc", id: "p", method: "ping", args: [] }));
    const reply = await new Promise<Record<string, unknown>>((resolve) => {
      writer.on("message", (data) => {
        const m = JSON.parse(String(data)) as Record<string, unknown>;
        if (m.id === "p") resolve(m);
      });
    });
    assert.equal(reply.success, true);

    slow.resume();
    assert.equal(await slowClosed, 1013);
  } finally {
    for (const ws of clients) ws.terminate();
    await bridge.stop();
  }
});
