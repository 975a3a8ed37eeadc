/**
 * `GET /readyz/engine` answers within the engine's health-check timeout, with 503 and the replica that did not answer
 * when the engine is hung, while `/readyz` keeps saying that the bridge serves its devices. Without the operator token
 * it names replicas by index and problems by kind only: their URLs and error text are for token holders.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import net from "node:net";
import { after, describe, test } from "node:test";
import { pino } from "pino";
import { type Bridge, createBridge } from "../../app/bridge.ts";
import { loadConfig } from "../../app/config/index.ts";
import { engineReadinessCheck } from "../../app/http/index.ts";
import type { EngineHealth } from "../../engine-client/index.ts";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { makeTempDir } from "./support/bridge-process.ts";

const TOKEN = "readyz-engine-token-0123456789";
const AUTH = { authorization: `Bearer ${TOKEN}` };
const root = makeTempDir("bridge-readyz-engine-");
after(() => fs.rmSync(root, { recursive: true, force: true }));
let dirs = 0;

async function startBridge(
  engine: Record<string, unknown> | undefined,
  clock?: ManualClock,
): Promise<{ bridge: Bridge; url: string }> {
  const loaded = loadConfig({
    overrides: {
      dataDir: path.join(root, `bridge-${++dirs}`),
      mqtt: { host: "127.0.0.1", port: 0 },
      http: { host: "127.0.0.1", port: 0, apiToken: TOKEN },
      ...(engine === undefined ? {} : { engine }),
    },
  });
  if (!loaded.ok) throw new Error(`the test config did not load: ${JSON.stringify(loaded.issues)}`);
  const bridge = await createBridge(loaded.config, { logger: pino({ level: "silent" }), ...(clock ? { clock } : {}) });
  const addresses = await bridge.start();
  return { bridge, url: `http://127.0.0.1:${addresses.http?.port}` };
}

describe("engine readiness", () => {
  test("a hung engine gets 503 naming the replica within healthCheckTimeoutMs; /readyz stays 200", async () => {
    const sim = await startEngineSimulator({ timeScale: 0, faults: { stall: true } });
    const { bridge, url } = await startBridge({ urls: [sim.url], model: sim.model, healthCheckTimeoutMs: 300 });
    try {
      const started = Date.now();
      const response = await fetch(`${url}/readyz/engine`, { headers: AUTH, signal: AbortSignal.timeout(10_000) });
      const elapsedMs = Date.now() - started;
      assert.equal(response.status, 503);
      // A wall-time bound far from both sides: 300 ms of health-check timeout, not the 60 s headers timeout.
      assert.ok(elapsedMs < 5000, `answered in ${elapsedMs} ms`);
      assert.deepEqual(await response.json(), {
        status: "down",
        message: `engine replica ${sim.url}: GET /health got no answer within 300 ms`,
        replicas: [
          {
            url: sim.url,
            state: "healthy",
            healthy: false,
            problem: { reason: "timeout", message: "GET /health got no answer within 300 ms" },
          },
        ],
      });
      const probe = await fetch(`${url}/readyz/engine`);
      assert.equal(probe.status, 503, "a probe without the token gets the same verdict");
      assert.deepEqual(await probe.json(), {
        status: "down",
        message: "engine.urls[0]: GET /health got no answer in time",
        replicas: [{ index: 0, state: "healthy", healthy: false, reason: "timeout" }],
      });
      const ready = await fetch(`${url}/readyz`);
      assert.equal(ready.status, 200, "devices are still served: the bridge itself stays ready");
    } finally {
      await bridge.stop();
      await sim.close();
    }
  });

  test("the bridge's injected clock times the engine client's health checks too", async () => {
    const sim = await startEngineSimulator({ timeScale: 0, faults: { stall: true } });
    const clock = new ManualClock();
    // 30 s on the bridge's clock: on the system clock this check would outlast the request's 10 s abort.
    const { bridge, url } = await startBridge(
      { urls: [sim.url], model: sim.model, healthCheckTimeoutMs: 30_000 },
      clock,
    );
    try {
      const answer = fetch(`${url}/readyz/engine`, { headers: AUTH, signal: AbortSignal.timeout(10_000) });
      let done = false;
      void answer.finally(() => {
        done = true;
      });
      while (!done) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        clock.advanceSync(1000);
      }
      const response = await answer;
      assert.equal(response.status, 503);
      const body = (await response.json()) as { message: string };
      assert.equal(body.message, `engine replica ${sim.url}: GET /health got no answer within 30000 ms`);
    } finally {
      await bridge.stop();
      await sim.close();
    }
  });

  test("a healthy engine is ready; no engine configured is not; an unknown check is 404", async () => {
    const sim = await startEngineSimulator({ timeScale: 0 });
    const withEngine = await startBridge({ urls: [sim.url], model: sim.model });
    const without = await startBridge(undefined);
    try {
      const ok = await fetch(`${withEngine.url}/readyz/engine`, { headers: AUTH });
      assert.equal(ok.status, 200);
      assert.deepEqual(await ok.json(), {
        status: "ok",
        replicas: [{ url: sim.url, state: "healthy", healthy: true }],
      });
      const probe = await fetch(`${withEngine.url}/readyz/engine`);
      assert.equal(probe.status, 200);
      assert.deepEqual(await probe.json(), { status: "ok", replicas: [{ index: 0, state: "healthy", healthy: true }] });
      const none = await fetch(`${without.url}/readyz/engine`);
      assert.equal(none.status, 503);
      assert.deepEqual(await none.json(), {
        status: "not-configured",
        message: "no reasoning engine is configured (engine.urls is empty)",
        replicas: [],
      });
      const unknown = await fetch(`${without.url}/readyz/database`);
      assert.equal(unknown.status, 404);
      assert.equal(((await unknown.json()) as { error: { code: string } }).error.code, "BRIDGE_ERR_API_NOT_FOUND");
    } finally {
      await Promise.all([withEngine.bridge.stop(), without.bridge.stop()]);
      await sim.close();
    }
  });

  test("a degraded engine is ready and names the replica that is not; probes share one health round", async () => {
    const clock = new ManualClock();
    let rounds = 0;
    let answer: (health: EngineHealth) => void = () => {};
    const engine = {
      health: () => {
        rounds++;
        return new Promise<EngineHealth>((resolve) => {
          answer = resolve;
        });
      },
    };
    const check = engineReadinessCheck(engine, { clock, reuseMs: 1000 });
    const first = check();
    const second = check();
    assert.equal(rounds, 1, "a probe that arrives while a round runs shares it");
    answer({
      status: "degraded",
      replicas: [
        { url: "http://a:8000", state: "healthy", healthy: true },
        { url: "http://b:8000", state: "cooling", healthy: true },
        {
          url: "http://c:8000",
          state: "healthy",
          healthy: false,
          problem: { reason: "status", message: "GET /health answered 503" },
        },
      ],
    });
    const result = await first;
    assert.equal(await second, result);
    assert.equal(result.ready, true, "one replica serving is enough to serve reasoning");
    assert.equal(
      result.body.message,
      "engine replica http://b:8000: out of rotation (cooling) after failed requests; " +
        "engine replica http://c:8000: GET /health answered 503",
    );
    assert.deepEqual(result.publicBody, {
      status: "degraded",
      message:
        "engine.urls[1]: out of rotation (cooling) after failed requests; engine.urls[2]: GET /health did not answer 200",
      replicas: [
        { index: 0, state: "healthy", healthy: true },
        { index: 1, state: "cooling", healthy: true },
        { index: 2, state: "healthy", healthy: false, reason: "status" },
      ],
    });
    clock.advanceSync(999);
    await check();
    assert.equal(rounds, 1, "a finished round answers probes for reuseMs");
    clock.advanceSync(1);
    const next = check();
    assert.equal(rounds, 2);
    answer({ status: "down", replicas: [{ url: "http://a:8000", state: "cooling", healthy: true }] });
    assert.equal((await next).ready, false);
  });
  test("without the token, an unreachable replica's host, port and network error stay out of the answer", async () => {
    // A port that was free a moment ago: connecting to it is refused, and the error names the address.
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const replicaUrl = `http://127.0.0.1:${port}`;
    const { bridge, url } = await startBridge({ urls: [replicaUrl], model: "m", healthCheckTimeoutMs: 2000 });
    try {
      const probe = await fetch(`${url}/readyz/engine`);
      assert.equal(probe.status, 503);
      const text = await probe.text();
      assert.ok(!text.includes(String(port)) && !text.includes("127.0.0.1"), `no address in ${text}`);
      assert.deepEqual(JSON.parse(text), {
        status: "down",
        message: "engine.urls[0]: unreachable",
        replicas: [{ index: 0, state: "healthy", healthy: false, reason: "unreachable" }],
      });
      assert.equal(probe.headers.get("cache-control"), "no-store");

      const full = await fetch(`${url}/readyz/engine`, { headers: AUTH });
      assert.equal(full.status, 503);
      const body = (await full.json()) as { message: string; replicas: Array<{ url: string }> };
      assert.equal(body.replicas[0]?.url, replicaUrl);
      assert.match(body.message, new RegExp(`^engine replica ${replicaUrl}: GET /health failed: `));

      const wrong = await fetch(`${url}/readyz/engine`, {
        headers: { authorization: "Bearer not-the-token-0123456789" },
      });
      assert.equal(wrong.status, 401, "a wrong token is refused, not read as no token");
      assert.equal(wrong.headers.get("www-authenticate"), 'Bearer realm="agent-bridge"');
      assert.equal(((await wrong.json()) as { error: { code: string } }).error.code, "BRIDGE_ERR_API_UNAUTHORIZED");
    } finally {
      await bridge.stop();
    }
  });

  for (const stepMs of [-3_600_000, 365 * 86_400_000]) {
    test(`a wall clock step of ${stepMs} ms neither keeps nor drops the last round`, async () => {
      const clock = new ManualClock();
      let rounds = 0;
      const engine = {
        health: async (): Promise<EngineHealth> => {
          rounds++;
          return { status: "ok", replicas: [{ url: "http://a:8000", state: "healthy", healthy: true }] };
        },
      };
      const check = engineReadinessCheck(engine, { clock, reuseMs: 1000 });
      await check();
      assert.equal(rounds, 1);
      // NTP steps the clock: the round answers for reuseMs all the same.
      clock.stepWall(stepMs);
      await check();
      assert.equal(rounds, 1, "the round is still fresh");
      clock.advanceSync(1000);
      await check();
      assert.equal(rounds, 2, "and stale once reuseMs is over");
    });
  }
});
