/**
 * One `GET /health` of one replica, bounded on the client's clock. Every health check has a bound of its own, far
 * below the headers timeout: a hung replica (it takes the connection and never answers) would otherwise hold the
 * caller for `headersTimeoutMs` (60 s by default), and a readiness probe with a 1-5 s timeout would see its own
 * timeout rather than an answer that names the replica. The outcome is a value, not an exception: no answer is an
 * expected result of a health check.
 */
import type { Dispatcher } from "undici";
import type { Clock } from "./clock.ts";
import { describeNetworkError } from "./http.ts";

/** Why a replica is not healthy: no answer in time, an answer other than 200, or no connection at all. */
export type HealthProblemReason = "timeout" | "status" | "unreachable";

export interface HealthProblem {
  reason: HealthProblemReason;
  /** One line for an operator, e.g. `GET /health got no answer within 2000 ms`. Holds no credentials. */
  message: string;
}

export type HealthCheckResult = { healthy: true } | { healthy: false; problem: HealthProblem };

/** Where the check goes: a replica's pool and its API root. */
export interface HealthCheckTarget {
  readonly pool: Dispatcher;
  readonly basePath: string;
}

/** Most of a health answer read before the socket is dropped instead (undici's own default); the status decides. */
const MAX_HEALTH_BODY_BYTES = 128 * 1024;

/** `GET {basePath}/health`, aborted when no 200 came within `timeoutMs` (body included). Never rejects. */
export async function checkHealth(
  target: HealthCheckTarget,
  clock: Clock,
  timeoutMs: number,
): Promise<HealthCheckResult> {
  const controller = new AbortController();
  const timer = clock.setTimeout(() => controller.abort(), timeoutMs);
  try {
    const response = await target.pool.request({
      method: "GET",
      path: `${target.basePath}/health`,
      signal: controller.signal,
    });
    // The same signal bounds the body: without it, `dump()` resolves when the abort destroys a stalled body, and a
    // replica that sent its 200 headers and nothing more would pass as healthy once the time was up.
    await response.body.dump({ limit: MAX_HEALTH_BODY_BYTES, signal: controller.signal });
    if (response.statusCode === 200) return { healthy: true };
    return { healthy: false, problem: { reason: "status", message: `GET /health answered ${response.statusCode}` } };
  } catch (err) {
    if (controller.signal.aborted) {
      return {
        healthy: false,
        problem: { reason: "timeout", message: `GET /health got no answer within ${timeoutMs} ms` },
      };
    }
    // A health check carries no API key, so there is none to redact from the error.
    const message = `GET /health failed: ${describeNetworkError(err, undefined)}`;
    return { healthy: false, problem: { reason: "unreachable", message } };
  } finally {
    clock.clearTimeout(timer);
  }
}
