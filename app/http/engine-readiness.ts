/**
 * The `engine` readiness check (`GET /readyz/engine`): can the configured engine serve reasoning now? It asks every
 * replica's `GET /health` through `EngineClient.health()`, which bounds each check by `engine.healthCheckTimeoutMs`,
 * so a probe with a 1-5 s timeout gets an answer that names the replica at fault instead of its own timeout.
 *
 * A check of its own, not part of `/readyz`: the bridge's readiness says devices can connect and be served, and
 * they can while the engine is down (reasoning requests get an error frame). Were the engine part of it, a hung
 * engine would take every gateway out of its load balancer at once, devices and all.
 *
 * `/readyz` needs no token, so neither does this, but without one it answers with `publicBody`: a load balancer's
 * probe needs the verdict, not the replicas' URLs and network errors (engine-readiness-public.ts). One health round
 * is shared by every probe that arrives while it runs and for `reuseMs` after, so a flood of probes cannot multiply
 * the engine's health requests.
 */
import type { EngineClient, EngineHealth } from "../../engine-client/index.ts";
import { type PublicEngineReadinessBody, publicProblem, publicReplica } from "./engine-readiness-public.ts";

/**
 * What a named readiness check answers: 200 when `ready`, 503 otherwise, with `body` as JSON to a caller with the
 * operator token and `publicBody` to any other.
 */
export interface ReadinessCheckResult {
  ready: boolean;
  /** The whole answer: replica URLs and the text of their errors, which can name internal hosts. */
  body: EngineReadinessBody;
  /** The same verdict without them: replicas by index, problems by kind. */
  publicBody: PublicEngineReadinessBody;
}

export type ReadinessCheck = () => Promise<ReadinessCheckResult>;

export interface EngineReadinessBody {
  status: EngineHealth["status"];
  /** Which replicas are not serving and why, one clause each; absent when all are. */
  message?: string;
  replicas: EngineHealth["replicas"];
}

export interface EngineReadinessOptions {
  /** Time source of the reuse window, a clock that never steps. Default: `performance.now()`. */
  clock?: { monotonicNow(): number };
  /** How long a finished health round answers later probes, ms. Default 1000. */
  reuseMs?: number;
}

const NOT_CONFIGURED = "no reasoning engine is configured (engine.urls is empty)";

/**
 * The engine check: ready when at least one replica answered its health check and is in rotation (`ok`, or
 * `degraded`: it serves, with fewer replicas); not ready when none is (`down`) or no engine is configured.
 *
 * @example
 * createHttpServer({ ...options, readinessChecks: { engine: engineReadinessCheck(engine) } });
 */
export function engineReadinessCheck(
  engine: Pick<EngineClient, "health"> | undefined,
  options: EngineReadinessOptions = {},
): ReadinessCheck {
  const clock = options.clock ?? { monotonicNow: () => performance.now() };
  const reuseMs = options.reuseMs ?? 1000;
  let current: Promise<ReadinessCheckResult> | undefined;
  let settledAt: number | undefined;
  return () => {
    if (current !== undefined && (settledAt === undefined || clock.monotonicNow() - settledAt < reuseMs))
      return current;
    settledAt = undefined;
    const round = checkEngine(engine).finally(() => {
      if (current === round) settledAt = clock.monotonicNow();
    });
    current = round;
    return round;
  };
}

/** No engine to ask: nothing in the answer is internal, so both views say the same. */
function notConfigured(): ReadinessCheckResult {
  return {
    ready: false,
    body: { status: "not-configured", message: NOT_CONFIGURED, replicas: [] },
    publicBody: { status: "not-configured", message: NOT_CONFIGURED, replicas: [] },
  };
}

async function checkEngine(engine: Pick<EngineClient, "health"> | undefined): Promise<ReadinessCheckResult> {
  if (engine === undefined) return notConfigured();
  let health: EngineHealth;
  try {
    health = await engine.health();
  } catch (err) {
    // health() reports replicas as values and does not reject; this is a fault of the client itself.
    const message = `the engine health check failed: ${err instanceof Error ? err.message : String(err)}`;
    return {
      ready: false,
      body: { status: "down", message, replicas: [] },
      publicBody: { status: "down", message: "the engine health check failed", replicas: [] },
    };
  }
  if (health.status === "not-configured") return notConfigured();
  const problems = health.replicas.flatMap((r) => {
    if (!r.healthy) return [`engine replica ${r.url}: ${r.problem?.message ?? "GET /health did not answer 200"}`];
    if (r.state !== "healthy") return [`engine replica ${r.url}: out of rotation (${r.state}) after failed requests`];
    return [];
  });
  const body: EngineReadinessBody = { status: health.status, replicas: health.replicas };
  if (problems.length > 0) body.message = problems.join("; ");
  const publicProblems = health.replicas.flatMap((r, index) => publicProblem(r, index) ?? []);
  const publicBody: PublicEngineReadinessBody = {
    status: health.status,
    replicas: health.replicas.map((r, index) => publicReplica(r, index)),
  };
  if (publicProblems.length > 0) publicBody.message = publicProblems.join("; ");
  return { ready: health.status !== "down", body, publicBody };
}
