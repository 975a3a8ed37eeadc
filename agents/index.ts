/**
 * The agent runtime: persistent single-threaded actors with their own SQLite database, state, connections,
 * schedules, queue and background tasks (docs/agents.md). Independent of MQTT: transports reach it through
 * `AgentHost` (agents/host.ts).
 */
export type { Value, ValueMap } from "../codecs/frames.ts";
export { Agent, type AgentClass } from "./agent.ts";
export {
  type AgentConfigIssue,
  type AgentConfigNames,
  agentConfigError,
  agentConfigIssues,
} from "./agent-config-check.ts";
/** The default agent class (agents/device/, its own engineer), re-exported so the app has one import. */
export { DeviceAgent } from "./device/index.ts";
export { isCallerInputCode, isServiceCode, type RefusalKind, refusalKind } from "./caller-input.ts";
export { systemClock } from "./clock.ts";
export type { ChatRequest, ChatStreamEvent, ReasoningEngine } from "./engine.ts";
export { AGENT_ERRORS } from "./errors.ts";
export type {
  AgentHost,
  ClientMessage,
  CloseReason,
  ConnectionInit,
  ConnectionKind,
  ConnectionTransport,
  DeliverOutcome,
  EventResult,
  InboundMessage,
  ProtocolMessage,
  RuntimeCloseReason,
} from "./host.ts";
export { isValidAgentId } from "./ids.ts";
export { RUNTIME_DEFAULTS, type RuntimeOptions } from "./options.ts";
export { backoffDelayMs, RETRY_DEFAULTS, resolveRetryOptions } from "./retry.ts";
export { createRuntime } from "./runtime.ts";
export { backupClosedRuntime, refuseNewerRuntimeDir } from "./runtime-snapshot-closed.ts";
export type {
  AgentEnv,
  AgentRuntime,
  AgentWiring,
  CallResult,
  Clock,
  Connection,
  FleetDirectory,
  QueueItem,
  RetryOptions,
  RuntimeBackupOptions,
  RuntimeBackupResult,
  RuntimeObserver,
  Schedule,
  ScheduleType,
  SqlValue,
  TaskContext,
  TaskOptions,
  TaskInfo,
} from "./types.ts";
