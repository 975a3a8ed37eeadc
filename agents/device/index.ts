/**
 * The default agent class and its public types. The runtime re-exports `DeviceAgent`; the app may import this
 * folder directly.
 */
export { DeviceAgent } from "./device-agent.ts";
export type { SetDesiredResult } from "./device-agent.ts";
export { DEVICE_AGENT_DEFAULTS, DEFAULT_SYSTEM_PROMPT, resolveDeviceAgentOptions } from "./options.ts";
export type { DeviceAgentOptions } from "./options.ts";
export type { CommandRecord, CommandState } from "./command-outbox.ts";
export { COMMAND_STATES } from "./command-outbox.ts";
export type { CommandObserver, CommandTransition } from "./command-observer.ts";
export { commandObserverWiring } from "./command-observer.ts";
export type { DeviceAgentWiring } from "./wiring.ts";
export type { DeviceCaps, DeviceProfile, DeviceStatus } from "./presence.ts";
export type { Shadow, ShadowDoc } from "./shadow-store.ts";
export type { TelemetryQuery, TelemetryRow } from "./telemetry-store.ts";
export type { Reading } from "./telemetry-readings.ts";
export type { Approval, ApprovalStatus } from "./reasoning/approval-store.ts";
export type { ResolveApprovalResult } from "./reasoning/approval-flow.ts";
export { APPROVAL_DIRECTORY_KIND } from "./reasoning/approval-flow.ts";
export type { ConversationEntry } from "./reasoning/conversation-store.ts";
export type { UsageTotals } from "./reasoning/turn-store.ts";
export { DEVICE_TOOLS, TOOL_NAMES } from "./reasoning/tools.ts";
export type { ToolName } from "./reasoning/tools.ts";
