/** What the bridge's `engine` settings give the engine client: every field it exposes, named as the client names it. */
import type { EngineClientInit } from "../../engine-client/index.ts";
import type { BridgeConfig } from "../config/index.ts";

/** The client's options from the bridge config; the app adds its observer and injected randomness. */
export function engineClientInit(config: BridgeConfig): EngineClientInit {
  const engine = config.engine;
  return {
    urls: engine.urls,
    apiKey: engine.apiKey,
    model: engine.model,
    maxInFlightPerReplica: engine.maxInFlightPerReplica,
    maxQueued: engine.maxQueued,
    priorityAgingMs: engine.priorityAgingMs,
    headersTimeoutMs: engine.headersTimeoutMs,
    bodyTimeoutMs: engine.bodyTimeoutMs,
    healthCheckTimeoutMs: engine.healthCheckTimeoutMs,
    consumerIdleTimeoutMs: engine.consumerIdleTimeoutMs,
    cooldown: {
      stallProbeTimeoutMs: engine.cooldown.stallProbeTimeoutMs,
      stallProbeIntervalMs: engine.cooldown.stallProbeIntervalMs,
    },
  };
}
