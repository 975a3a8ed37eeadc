/**
 * The dashboard's fleet view names a hung engine replica, whatever `engine.healthCheckTimeoutMs` is: its own guard
 * on the engine's health waits past the engine client's configured bound instead of racing it.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { pino } from "pino";
import { createBridge } from "../../app/bridge.ts";
import { loadConfig } from "../../app/config/index.ts";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import { makeTempDir } from "./support/bridge-process.ts";

const TOKEN = "fleet-engine-health-token-0123456789";
const root = makeTempDir("bridge-fleet-engine-health-");
after(() => fs.rmSync(root, { recursive: true, force: true }));

describe("engine health in the fleet view", () => {
  test("a hung replica is named after a healthCheckTimeoutMs longer than the default, not reported unknown", async () => {
    const sim = await startEngineSimulator({ timeScale: 0, faults: { stall: true } });
    const loaded = loadConfig({
      overrides: {
        dataDir: path.join(root, "bridge"),
        mqtt: { host: "127.0.0.1", port: 0 },
        http: { host: "127.0.0.1", port: 0, apiToken: TOKEN },
        // Above the 2 s default: the fleet view used to give up at 2.5 s whatever the engine's own bound was.
        engine: { urls: [sim.url], model: sim.model, healthCheckTimeoutMs: 3000 },
      },
    });
    if (!loaded.ok) throw new Error(`the test config did not load: ${JSON.stringify(loaded.issues)}`);
    const bridge = await createBridge(loaded.config, { logger: pino({ level: "silent" }) });
    try {
      const addresses = await bridge.start();
      const response = await fetch(`http://127.0.0.1:${addresses.http?.port}/api/fleet`, {
        headers: { authorization: `Bearer ${TOKEN}` },
        signal: AbortSignal.timeout(20_000),
      });
      assert.equal(response.status, 200);
      const view = (await response.json()) as { engine: { health: unknown } };
      assert.deepEqual(view.engine.health, {
        status: "down",
        replicas: [
          {
            url: sim.url,
            state: "healthy",
            healthy: false,
            problem: { reason: "timeout", message: "GET /health got no answer within 3000 ms" },
          },
        ],
      });
    } finally {
      await bridge.stop();
      await sim.close();
    }
  });
});
