import type { BridgeConfig } from "./schema.ts";

const HIDDEN = "[redacted]";

/**
 * A copy of the configuration that is safe to log: secrets replaced, so a log line, a support bundle or `/readyz`
 * never carries the engine key or the API token.
 */
export function redactConfig(config: BridgeConfig): BridgeConfig {
  return {
    ...config,
    http: { ...config.http, apiToken: config.http.apiToken === undefined ? undefined : HIDDEN },
    engine: { ...config.engine, apiKey: config.engine.apiKey === undefined ? undefined : HIDDEN },
  };
}
