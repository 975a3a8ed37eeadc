/**
 * Fixture for operator API tests: the real agent runtime with DeviceAgent on a temp data dir, the real SQLite
 * device registry (cheap scrypt), a broker stand-in whose online set the test controls, and the API mounted on a
 * fastify instance driven with `inject`.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from "fastify";
import pino from "pino";
import type { UpMessage } from "../../codecs/frames.ts";
import type { ReasoningEngine } from "../../agents/engine.ts";
import type { ConnectionTransport, EventResult } from "../../agents/host.ts";
import { createRuntime, DeviceAgent, type RuntimeOptions } from "../../agents/index.ts";
import type { AgentRuntime } from "../../agents/types.ts";
import { createDeviceRegistry, type DeviceRegistry } from "../../broker/registry/index.ts";
import { API_MAX_PARAM_LENGTH, type OperatorEngine, registerOperatorApi } from "../../app/api/index.ts";
import { createMetrics, trackHost } from "../../app/metrics/index.ts";
import { ManualClock } from "../support/manual-clock.ts";

export const TOKEN = "api-test-token-0123456789abcdef";
export const AUTH = { authorization: `Bearer ${TOKEN}` };

export interface ApiFixture {
  app: FastifyInstance;
  runtime: AgentRuntime;
  registry: DeviceRegistry;
  /** Time of the runtime, registry, metrics and API; tests move it with `advanceSync`. */
  clock: ManualClock;
  online: Set<string>;
  /** The runtime's data directory: agent databases are `agents/<id>.db` under it. */
  runtimeDir: string;
  /** Provisions a device through the registry (not the API). */
  provision(id: string): Promise<void>;
  /** Opens an internal device connection and delivers frames through it, as the broker would. */
  device(id: string): Promise<{ send(message: UpMessage): Promise<EventResult>; close(): Promise<void> }>;
  close(): Promise<void>;
}

export async function createApiFixture(
  options: {
    engine?: ReasoningEngine & Partial<OperatorEngine>;
    agentConfig?: Record<string, unknown>;
    /** Agent classes by id pattern besides the default DeviceAgent. */
    agentClasses?: RuntimeOptions["agentClasses"];
    /** The runtime's logger (its agents log through it). Default: silent. */
    logger?: RuntimeOptions["logger"];
    /** The API's own logger (fastify's: the API error handler logs through it). Default: none. */
    apiLogger?: FastifyBaseLogger;
  } = {},
): Promise<ApiFixture> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "api-test-"));
  const clock = new ManualClock(Date.UTC(2026, 0, 15, 12, 0, 0));
  let seed = 7;
  const random = () => {
    seed = (seed * 16807) % 2147483647;
    return seed / 2147483647;
  };
  const metrics = createMetrics({ clock, defaultMetrics: false });
  const runtime = createRuntime({
    dataDir: path.join(dataDir, "agents"),
    defaultAgentClass: DeviceAgent,
    clock,
    random,
    engine: options.engine,
    logger: options.logger ?? pino({ level: "silent" }),
    agentConfig: options.agentConfig === undefined ? undefined : { DeviceAgent: options.agentConfig },
    agentClasses: options.agentClasses,
    observer: metrics.runtimeObserver,
  });
  await runtime.start();
  const registry = createDeviceRegistry({
    path: path.join(dataDir, "registry.db"),
    clock,
    scrypt: { N: 1024, r: 8, p: 1 },
  });
  const online = new Set<string>();
  // The router limit the bridge's HTTP server sets, so ids of every length reach the routes' schemas as there.
  const routerOptions = { maxParamLength: API_MAX_PARAM_LENGTH };
  const app =
    options.apiLogger === undefined
      ? Fastify({ routerOptions })
      : Fastify({
          routerOptions,
          loggerInstance: options.apiLogger,
          logController: new LogController({ disableRequestLogging: true }),
        });
  const engine =
    options.engine?.health !== undefined && options.engine.stats !== undefined
      ? (options.engine as OperatorEngine)
      : undefined;
  await registerOperatorApi(app, {
    runtime,
    registry,
    broker: { isOnline: (id) => online.has(id), connectedDevices: () => [...online] },
    engine,
    activity: metrics.activity,
    apiToken: TOKEN,
    clock,
  });
  // Devices reach the runtime through the activity tracker, as the broker does in the bridge.
  const host = trackHost(runtime, metrics.activity);
  let n = 0;
  return {
    app,
    runtime,
    registry,
    clock,
    online,
    runtimeDir: path.join(dataDir, "agents"),
    async provision(id) {
      const r = await registry.add(id, { codec: "json" });
      if (r.status !== "created") throw new Error(`provision ${id}: ${r.status}`);
    },
    async device(id) {
      const connectionId = `test-${++n}`;
      const transport: ConnectionTransport = { send() {}, sendProtocol() {}, close() {} };
      const opened = await host.open(id, { id: connectionId, kind: "internal", codec: "json", transport });
      if (opened.status !== "committed") throw new Error(`open ${id}: ${opened.message}`);
      online.add(id);
      return {
        async send(message) {
          const outcome = host.deliver(id, connectionId, message);
          if (!outcome.accepted) throw new Error("mailbox full");
          return outcome.done;
        },
        async close() {
          online.delete(id);
          await host.close(id, connectionId, "disconnect");
        },
      };
    },
    async close() {
      await app.close();
      await runtime.shutdown();
      registry.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
