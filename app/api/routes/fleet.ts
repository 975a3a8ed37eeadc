/**
 * The dashboard's overview in one request: device counts, agent counts, message rates with a short history,
 * engine health and pending approvals. Built from counters and the registry, never by waking agents.
 */
import type { FastifyInstance } from "fastify";
import { RUNTIME_CLOSED_RESPONSES } from "../agent-call.ts";
import type { OperatorDeps } from "../deps.ts";
import { type JsonValue, toJsonValue } from "../json-value.ts";
import { fleetAnswer } from "../response-schemas.ts";
import { listApprovals } from "./approvals.ts";

/**
 * How much longer than the engine client's own bound on a health check the fleet view waits before it reports the
 * engine's health as unknown. A guard only: the engine client bounds each replica's check itself
 * (`engine.healthCheckTimeoutMs`) and then names the replica that did not answer, so the guard waits past that bound,
 * whatever it is configured to, rather than racing it.
 */
export const ENGINE_HEALTH_GUARD_MARGIN_MS = 500;
/** The engine client's bound when the deps do not give it (`engine.healthCheckTimeoutMs`' default). */
const DEFAULT_ENGINE_HEALTH_CHECK_TIMEOUT_MS = 2000;
/** A health answer is reused this long, so many open dashboards cost the engine one probe, not one each. */
export const ENGINE_HEALTH_CACHE_MS = 5000;

export function registerFleetRoutes(api: FastifyInstance, deps: OperatorDeps): void {
  const now = () => (deps.clock ?? Date).now();
  const monotonicNow = () => deps.clock?.monotonicNow() ?? performance.now();
  const guardMs =
    (deps.engineHealthCheckTimeoutMs ?? DEFAULT_ENGINE_HEALTH_CHECK_TIMEOUT_MS) + ENGINE_HEALTH_GUARD_MARGIN_MS;
  let cached: { at: number; health: Promise<JsonValue> } | undefined;
  const health = (engine: NonNullable<OperatorDeps["engine"]>): Promise<JsonValue> => {
    // Aged on the monotonic clock: on the wall clock a step back kept the answer for as long as the step.
    if (cached === undefined || monotonicNow() - cached.at >= ENGINE_HEALTH_CACHE_MS) {
      cached = { at: monotonicNow(), health: probe(engine, guardMs) };
    }
    return cached.health;
  };
  api.get(
    "/fleet",
    {
      schema: { summary: "Fleet overview for the dashboard: counts, rates, engine health", tags: ["fleet"] },
      // The pending approvals are read from the runtime's directory.
      config: { successSchema: fleetAnswer, errorResponses: RUNTIME_CLOSED_RESPONSES },
    },
    async () => {
      // A COUNT, not the records: the dashboard polls this every few seconds, with fleets of thousands of devices.
      const registered = deps.registry.count();
      const online = deps.broker.connectedDevices().length;
      return {
        serverTime: now(),
        devices: { registered, online, offline: Math.max(0, registered - online) },
        agents: deps.runtime.stats(),
        rates: deps.activity?.rates() ?? null,
        engine: await engineView(deps, health),
        approvalsPending: listApprovals(deps).length,
      };
    },
  );
}

/** One health probe; never rejects (a failure is reported as a value). */
async function probe(engine: NonNullable<OperatorDeps["engine"]>, guardMs: number): Promise<JsonValue> {
  try {
    return plainJson(await withTimeout(engine.health(), guardMs));
  } catch (err) {
    return { healthy: false, error: err instanceof Error ? err.message : String(err) };
  }
}

async function engineView(
  deps: OperatorDeps,
  health: (engine: NonNullable<OperatorDeps["engine"]>) => Promise<JsonValue>,
): Promise<Record<string, unknown>> {
  const activity = deps.activity?.engine() ?? null;
  if (deps.engine === undefined) return { configured: false, health: null, stats: null, activity };
  const engine = deps.engine;
  let stats: JsonValue;
  try {
    stats = plainJson(engine.stats());
  } catch {
    stats = null;
  }
  return { configured: true, health: await health(engine), stats, activity };
}

/** Engine objects are plain data but typed `unknown`; a JSON round trip keeps only what JSON can carry. */
function plainJson(value: unknown): JsonValue {
  if (value === undefined) return null;
  return toJsonValue(JSON.parse(JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? Number(v) : v))));
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`engine health did not answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
