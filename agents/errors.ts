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
