/** Stable error codes of the agent runtime (docs/errors.md, "Agents"). */
export const AGENT_ERRORS = {
  INVALID_OPTION: "BRIDGE_ERR_INVALID_OPTION",
  INVALID_AGENT_ID: "BRIDGE_ERR_INVALID_AGENT_ID",
  STORAGE_FULL: "BRIDGE_ERR_STORAGE_FULL",
  STORAGE: "BRIDGE_ERR_STORAGE",
  STATE_TOO_LARGE: "BRIDGE_ERR_STATE_TOO_LARGE",
  STATE_INVALID: "BRIDGE_ERR_STATE_INVALID",
  READONLY: "BRIDGE_ERR_READONLY",
  READONLY_CONNECTION: "BRIDGE_ERR_READONLY_CONNECTION",
  RPC_UNKNOWN_METHOD: "BRIDGE_ERR_RPC_UNKNOWN_METHOD",
  RPC_FAILED: "BRIDGE_ERR_RPC_FAILED",
  CALL_UNKNOWN_METHOD: "BRIDGE_ERR_CALL_UNKNOWN_METHOD",
  CONNECTION_UNKNOWN: "BRIDGE_ERR_CONNECTION_UNKNOWN",
  HANDLER_FAILED: "BRIDGE_ERR_HANDLER_FAILED",
  SCHEDULE_INVALID: "BRIDGE_ERR_SCHEDULE_INVALID",
  TASK_CANCELLED: "BRIDGE_ERR_TASK_CANCELLED",
  TASK_FAILED: "BRIDGE_ERR_TASK_FAILED",
  AGENT_HIBERNATED: "BRIDGE_ERR_AGENT_HIBERNATED",
  RUNTIME_CLOSED: "BRIDGE_ERR_RUNTIME_CLOSED",
  /**
   * The event's own agent was destroyed (destroyAgent) while the event waited: it is gone for good, so unlike
   * RUNTIME_CLOSED (a shutdown) trying again against it is no use; a later event makes a new agent.
   */
  AGENT_DESTROYED: "BRIDGE_ERR_AGENT_DESTROYED",
  VALUE_ENCODE: "BRIDGE_ERR_VALUE_ENCODE",
  CALLBACK_TIMEOUT: "BRIDGE_ERR_CALLBACK_TIMEOUT",
  AGENT_RETIRED: "BRIDGE_ERR_AGENT_RETIRED",
  /**
   * The agent is not started: its onStart did not settle within callbackTimeoutMs twice or more in a row, and its next
   * try waits for a backoff (start-backoff.ts). The event did not run; trying again after `details.retryInMs` may.
   */
  AGENT_START_TIMEOUT: "BRIDGE_ERR_AGENT_START_TIMEOUT",
} as const;

import { BridgeError } from "../errors/bridge-error.ts";

/** The stable code of any thrown value: a BridgeError's own code, else BRIDGE_ERR_HANDLER_FAILED. */
export function errorCode(err: unknown): string {
  return err instanceof BridgeError ? err.code : AGENT_ERRORS.HANDLER_FAILED;
}

/** A short message of any thrown value. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Runtime codes that say a caller's input was refused, not that the agent or the bridge failed. */
const CALLER_INPUT_CODES: ReadonlySet<string> = new Set([
  AGENT_ERRORS.STATE_INVALID,
  AGENT_ERRORS.READONLY,
  AGENT_ERRORS.READONLY_CONNECTION,
  AGENT_ERRORS.RPC_UNKNOWN_METHOD,
  AGENT_ERRORS.CALL_UNKNOWN_METHOD,
]);
const RUNTIME_CODES: ReadonlySet<string> = new Set(Object.values(AGENT_ERRORS));
/**
 * An agent class's own code for refused input (DeviceAgent's BRIDGE_ERR_INVALID_ARGUMENT, a class's
 * BRIDGE_ERR_THERMO_NOT_FOUND), by the suffixes the operator API answers with a 4xx (app/api/errors.ts). The runtime's
 * own codes are not read this way: BRIDGE_ERR_SCHEDULE_INVALID is the agent's own mistake, whatever event it came in.
 */
const CALLER_INPUT_SUFFIX =
  /_(INVALID|INVALID_ARGUMENT|ARGUMENT|ARGS|VALIDATION|BAD_REQUEST|NOT_FOUND|CONFLICT|STALE|VERSION|VERSION_CONFLICT|EXISTS|READONLY|FORBIDDEN|NOT_CALLABLE)$/;
/**
 * Codes of a service an agent calls for itself, never a caller's input whatever their suffix: the engine refusing a
 * request the agent built (BRIDGE_ERR_ENGINE_BAD_REQUEST for a wrong API key, an unknown model, a malformed tool
 * schema) is a fault of the agent or of the bridge's configuration, which an operator must see (agents/engine.ts:
 * faults of the engine are BRIDGE_ERR_ENGINE_* codes).
 */
const SERVICE_CODE_PREFIX = "BRIDGE_ERR_ENGINE_";

/**
 * True when `err`, failing `event`, is a caller's bad input rather than a fault: the event is one a caller sent (an
 * operator's call, a connection's message, an rpc it ran) and the code the caller is answered with (errorCode, so a
 * plain Error is never one) says its input was refused. Such a failure is the caller's to fix, and is answered to it
 * as a value; it is no server error, so the default onError logs it at debug, without a stack.
 */
export function isCallerInputError(err: unknown, event: string): boolean {
  if (event !== "call" && event !== "message" && !event.startsWith("rpc:")) return false;
  if (!(err instanceof BridgeError)) return false;
  const code = err.code;
  if (code.startsWith(SERVICE_CODE_PREFIX)) return false;
  return CALLER_INPUT_CODES.has(code) || (!RUNTIME_CODES.has(code) && CALLER_INPUT_SUFFIX.test(code));
}
