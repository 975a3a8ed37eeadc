/** Bridge configuration: one schema with defaults, merged from file, environment and flags. */
export {
  type ConfigIssue,
  formatConfigIssue,
  isLoopbackHost,
  type LoadConfigOptions,
  type LoadConfigResult,
  loadConfig,
  sourceOf,
} from "./load.ts";
export { redactConfig } from "./redact.ts";
export {
  type AgentClassConfig,
  type BridgeConfig,
  type BridgeConfigInput,
  configSchema,
  LOG_LEVEL_NAMES,
} from "./schema.ts";
export { SETTING_SOURCES, type SettingSource } from "./sources.ts";
