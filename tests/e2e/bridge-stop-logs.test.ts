import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, test } from "node:test";
import { createBridge } from "../../app/bridge.ts";
import { capturingLogger } from "../support/capturing-logger.ts";
import { loopbackConfig } from "../support/in-process-bridge.ts";
import { makeTempDir } from "./support/bridge-process.ts";

const dataDir = makeTempDir("bridge-stop-logs-");
after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

/** An engine whose `/health` answers only when the test says so; resolves once each held request has ended. */
async function stallingEngine() {
  const held: Array<{ res: http.ServerResponse; ended: Promise<void> }> = [];
  let healthAsked: () => void = () => {};
  const asked = new Promise<void>((resolve) => {
    healthAsked = resolve;
  });
  const server = http.createServer((req, res) => {
    if (req.url === "/health") {
      held.push({ res, ended: new Promise((resolve) => res.on("close", () => resolve())) });
      healthAsked();
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    asked,
    /** Answers every held health check healthy and waits until each request has ended. */
    async answerAll(): Promise<void> {
      for (const h of held) if (!h.res.writableEnded && !h.res.destroyed) h.res.writeHead(200).end("{}");
      await Promise.all(held.map((h) => h.ended));
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe("bridge stop and its log", () => {
  test("the engine health at start is not logged when the bridge stopped before the check ended", async () => {
    const engine = await stallingEngine();
    const { logger, lines } = capturingLogger<{ msg: string }>("info");
    try {
      const bridge = await createBridge(
        loopbackConfig({ dataDir, apiToken: "stop-logs-token-0123456789", engineUrls: [engine.url] }),
        { logger },
      );
      await bridge.start();
      await engine.asked;
      await bridge.stop();
      logger.info("stopped");
      await engine.answerAll();
      // The check's own callbacks run on later turns of the event loop than the request's end.
      for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
      const afterStop = lines.slice(lines.findIndex((l) => l.msg === "stopped") + 1).map((l) => l.msg);
      assert.deepEqual(afterStop, []);
      assert.ok(!lines.some((l) => /engine health/.test(l.msg)), JSON.stringify(lines.map((l) => l.msg)));
    } finally {
      await engine.close();
    }
  });

  test("a running bridge logs the engine health at start once the check ends", async () => {
    const engine = await stallingEngine();
    let logged: () => void = () => {};
    const healthLogged = new Promise<void>((resolve) => {
      logged = resolve;
    });
    const { logger, lines } = capturingLogger<{ msg: string; engineStatus?: string }>("info", {
      onLine: (line) => {
        if (line.msg === "engine health at start") logged();
      },
    });
    try {
      const bridge = await createBridge(
        loopbackConfig({ dataDir, apiToken: "stop-logs-token-0123456789", engineUrls: [engine.url] }),
        { logger },
      );
      try {
        await bridge.start();
        await engine.asked;
        await engine.answerAll();
        await healthLogged;
        assert.equal(lines.find((l) => l.msg === "engine health at start")?.engineStatus, "ok");
      } finally {
        await bridge.stop();
      }
    } finally {
      await engine.close();
    }
  });
});
