import type { Value } from "../../codecs/frames.ts";
import { BridgeError } from "../../errors/bridge-error.ts";
import type { AgentCell } from "../cell.ts";
import { AGENT_ERRORS } from "../errors.ts";
import { invokeCallback } from "../callback-timeout.ts";

/** Hooks of subclasses follow the base class's naming (`onTelemetry`); operators never call them. */
const HOOK_NAME = /^on[A-Z]/;

/**
 * An operator call (REST API): any public method declared by the agent's class, hooks and base API excluded. An async
 * method is bounded by callbackTimeoutMs (callback-timeout.ts); a synchronous one costs no timer.
 */
export function handleCall(cell: AgentCell, method: string, args: Value[]): Value | Promise<Value> {
  if (typeof method !== "string" || HOOK_NAME.test(method)) {
    throw new BridgeError(AGENT_ERRORS.CALL_UNKNOWN_METHOD, "hooks are not callable", { method: String(method) });
  }
  return invokeCallback(cell, "call", method, args);
}
