/**
 * The engine's health, checked once as the bridge becomes ready and logged (info when it is ok, warn otherwise).
 * Reported, not awaited: reasoning is one feature among many, and a slow engine must not delay devices.
 */
import type { Logger } from "pino";
import type { EngineClient } from "../../engine-client/index.ts";

/**
 * Starts the check; `stillReady` is asked when it ends. A stop that began before the check ended makes its answer moot
 * (closing the engine client ends the check as failed): nothing is logged then, so no line follows the bridge's own
 * "stopped".
 */
export function logEngineHealthAtStart(engine: EngineClient, logger: Logger, stillReady: () => boolean): void {
  engine.health().then(
    (h) => {
      if (!stillReady()) return;
      const healthy = h.replicas.filter((r) => r.healthy).length;
      const log = h.status === "ok" ? logger.info.bind(logger) : logger.warn.bind(logger);
      log({ engineStatus: h.status, healthy, replicas: h.replicas.length }, "engine health at start");
    },
    (err: unknown) => {
      if (stillReady()) logger.warn({ err }, "engine health check failed at start");
    },
  );
}
