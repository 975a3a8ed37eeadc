/**
 * The operator HTTP server's slow-client limits come from the config (`http.headersTimeoutMs`, `requestTimeoutMs`,
 * `keepAliveTimeoutMs`, `maxConnections`), are validated there, and leave MQTT over WebSocket devices connected.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import { after, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { createBridge } from "../../app/bridge.ts";
import { formatConfigIssue, loadConfig } from "../../app/config/index.ts";
import { AGENT_SOCKETS_MAX } from "../../app/config/http-connections.ts";
import { AGENT_SOCKET_DEFAULTS } from "../../app/ws/index.ts";
import { loopbackConfig } from "../support/in-process-bridge.ts";
import { makeTempDir } from "./support/bridge-process.ts";
import { connectDevice } from "./support/device.ts";
import { rawStatusLine } from "./support/raw-http.ts";

const dataDir = makeTempDir("config-http-limits-");
after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

describe("http slow-client limits in the config", () => {
  test("defaults, the environment, and the rules of each field", () => {
    const defaults = loadConfig({});
    assert.ok(defaults.ok);
    if (defaults.ok) {
      const { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs, maxConnections } = defaults.config.http;
      assert.deepEqual(
        { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs, maxConnections },
        { headersTimeoutMs: 15_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 5_000, maxConnections: 12_288 },
      );
    }
    const fromEnv = loadConfig({
      env: {
        BRIDGE_HTTP_HEADERS_TIMEOUT_MS: "5000",
        BRIDGE_HTTP_REQUEST_TIMEOUT_MS: "20000",
        BRIDGE_HTTP_KEEP_ALIVE_TIMEOUT_MS: "65000",
        BRIDGE_HTTP_MAX_CONNECTIONS: "500",
      },
    });
    assert.ok(fromEnv.ok);
    if (fromEnv.ok) {
      assert.equal(fromEnv.config.http.headersTimeoutMs, 5000);
      assert.equal(fromEnv.config.http.requestTimeoutMs, 20_000);
      assert.equal(fromEnv.config.http.keepAliveTimeoutMs, 65_000);
      assert.equal(fromEnv.config.http.maxConnections, 500);
    }
    const zero = loadConfig({ overrides: { http: { maxConnections: 0, keepAliveTimeoutMs: 0 } } });
    assert.equal(zero.ok, false);
    if (!zero.ok) {
      assert.deepEqual(zero.issues.map(formatConfigIssue).sort(), [
        "config error: http.keepAliveTimeoutMs must be an integer from 1 to 3600000 (from overrides)",
        "config error: http.maxConnections must be an integer from 1 to 10000000 (from overrides)",
      ]);
    }
    const crossed = loadConfig({ env: { BRIDGE_HTTP_HEADERS_TIMEOUT_MS: "40000" } });
    assert.equal(crossed.ok, false);
    if (!crossed.ok) {
      assert.deepEqual(crossed.issues.map(formatConfigIssue), [
        "config error: http.headersTimeoutMs must not exceed http.requestTimeoutMs (30000) (from BRIDGE_HTTP_HEADERS_TIMEOUT_MS)",
      ]);
    }
    const shortRequest = loadConfig({ overrides: { http: { requestTimeoutMs: 10_000 } } });
    assert.equal(shortRequest.ok, false);
    if (!shortRequest.ok) {
      assert.deepEqual(shortRequest.issues.map(formatConfigIssue), [
        "config error: http.requestTimeoutMs must be at least http.headersTimeoutMs (15000) (from overrides)",
      ]);
    }
  });

  test("http.maxConnections, when not set, leaves operators room past the MQTT over WebSocket devices the broker takes", () => {
    // The /mqtt endpoint holds mqtt.limits.maxConnections plus max(64, 10%) WebSockets, the agent endpoint 1024, and
    // every one of them counts against http.maxConnections: a cap under their sum let devices lock the operator out
    // of the API, the dashboard and /metrics (and refused devices the broker would take).
    const raised = loadConfig({ overrides: { mqtt: { limits: { maxConnections: 50_000 } } } });
    assert.ok(raised.ok);
    if (raised.ok) assert.equal(raised.config.http.maxConnections, 55_000 + 1024 + 264);
    const lowered = loadConfig({ env: { BRIDGE_MQTT_MAX_CONNECTIONS: "100" } });
    assert.ok(lowered.ok);
    if (lowered.ok) assert.equal(lowered.config.http.maxConnections, 164 + 1024 + 264);
    assert.equal(
      AGENT_SOCKETS_MAX,
      AGENT_SOCKET_DEFAULTS.maxSockets,
      "the agent endpoint's bound, as the config counts it",
    );
    // Set by the operator, it is theirs, whatever the broker takes.
    const set = loadConfig({
      overrides: { mqtt: { limits: { maxConnections: 50_000 } }, http: { maxConnections: 20_000 } },
    });
    assert.ok(set.ok);
    if (set.ok) assert.equal(set.config.http.maxConnections, 20_000);
  });

  test("the bridge's HTTP server applies them, and an MQTT over WebSocket device stays connected past them", async () => {
    const config = loopbackConfig({ dataDir, apiToken: "http-limits-token-0123456789" });
    const bridge = await createBridge(
      {
        ...config,
        http: { ...config.http, headersTimeoutMs: 150, requestTimeoutMs: 200, keepAliveTimeoutMs: 150 },
      },
      { logger: pino({ level: "silent" }) },
    );
    const { http } = await bridge.start();
    const port = http?.port ?? 0;
    const added = await bridge.registry.add("ws-dev", { codec: "json" });
    assert.equal(added.status, "created");
    const device = await connectDevice({
      port,
      url: `ws://127.0.0.1:${port}/mqtt`,
      id: "ws-dev",
      secret: added.status === "created" ? added.secret : undefined,
      codec: "json",
    });
    try {
      const started = performance.now();
      assert.match(await rawStatusLine(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n"), /^HTTP\/1\.1 408 /);
      const tookMs = performance.now() - started;
      assert.ok(tookMs < 2000, `a stalled head was answered after ${Math.round(tookMs)} ms`);
      await sleep(1200);
      assert.equal(device.client.connected, true);
      await device.send("telemetry", { r: { t: 21.5 } });
    } finally {
      await device.end();
      await bridge.stop();
    }
  });
});
