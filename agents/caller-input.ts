/**
 * Which error codes refuse a caller's input, and how: the one classification the runtime's default onError logs by
 * (a caller's bad input is a debug line, not a fault) and the operator API answers by (app/api/errors.ts maps each
 * kind of a caller's refused input to its 4xx, and a refusal that is not the caller's to a 5xx), so the two cannot
 * disagree on a code.
 */
import { BridgeError } from "../errors/bridge-error.ts";
import { AGENT_ERRORS, errorCode } from "./errors.ts";

/** What a refusal says of the input: malformed, naming nothing there is, clashing with what is there, not allowed. */
export type RefusalKind = "invalid" | "not-found" | "conflict" | "forbidden";

/** The runtime's own codes that refuse a caller's input; the runtime's other codes never do, whatever their ending. */
const RUNTIME_REFUSALS: ReadonlyMap<string, RefusalKind> = new Map<string, RefusalKind>([
  [AGENT_ERRORS.INVALID_AGENT_ID, "invalid"],
  [AGENT_ERRORS.STATE_INVALID, "invalid"],
  [AGENT_ERRORS.READONLY, "forbidden"],
  [AGENT_ERRORS.READONLY_CONNECTION, "forbidden"],
  [AGENT_ERRORS.RPC_UNKNOWN_METHOD, "not-found"],
  [AGENT_ERRORS.CALL_UNKNOWN_METHOD, "not-found"],
]);

/**
 * An agent class's own codes by their ending, so a class with, say, `BRIDGE_ERR_THERMO_NOT_FOUND` is read sensibly
 * without a table change (DeviceAgent's BRIDGE_ERR_INVALID_ARGUMENT ends in `_ARGUMENT`).
 */
const REFUSAL_ENDINGS: ReadonlyArray<readonly [RegExp, RefusalKind]> = [
  [/_NOT_FOUND$/, "not-found"],
  [/_(CONFLICT|STALE|VERSION|VERSION_CONFLICT|EXISTS)$/, "conflict"],
  [/_(INVALID|VALIDATION|BAD_REQUEST|ARGS|ARGUMENT)$/, "invalid"],
  [/_(READONLY|FORBIDDEN|NOT_CALLABLE)$/, "forbidden"],
];

const RUNTIME_CODES: ReadonlySet<string> = new Set(Object.values(AGENT_ERRORS));

/**
 * Codes of a service an agent calls for itself, never a caller's input whatever their ending: the engine refusing a
 * request the agent built (BRIDGE_ERR_ENGINE_BAD_REQUEST for a wrong API key, an unknown model, a malformed tool
 * schema) is a fault of the agent or of the bridge's configuration, which an operator must see (agents/engine.ts:
 * faults of the engine are BRIDGE_ERR_ENGINE_* codes).
 */
const SERVICE_CODE_PREFIX = "BRIDGE_ERR_ENGINE_";

/**
 * True when `code` is one of a service an agent calls for itself (the inference engine): whatever it refuses, it
 * refused the agent, so the operator API answers it as an upstream service's fault (502), never as the caller's.
 */
export function isServiceCode(code: string): boolean {
  return code.startsWith(SERVICE_CODE_PREFIX);
}

/**
 * The kind of refusal `code` states: a runtime code by its table, any other code by its ending; undefined for a code
 * that refuses nothing (a fault, an unavailability). Some codes state a refusal that is not of a caller's input (see
 * isCallerInputCode); the operator API answers those with a 5xx, keeping the refusal's 4xx for a caller's input.
 *
 * @example
 * refusalKind("BRIDGE_ERR_THERMO_NOT_FOUND"); // "not-found"
 * refusalKind("BRIDGE_ERR_HANDLER_FAILED"); // undefined
 */
export function refusalKind(code: string): RefusalKind | undefined {
  const runtime = RUNTIME_REFUSALS.get(code);
  if (runtime !== undefined) return runtime;
  for (const [ending, kind] of REFUSAL_ENDINGS) if (ending.test(code)) return kind;
  return undefined;
}

/**
 * True when `code` refuses a caller's input: it states a refusal (refusalKind) and is neither one of the runtime's
 * other codes (BRIDGE_ERR_SCHEDULE_INVALID is the agent's own mistake, whatever event it came in) nor a code of a
 * service the agent calls for itself (BRIDGE_ERR_ENGINE_BAD_REQUEST).
 */
export function isCallerInputCode(code: string): boolean {
  if (RUNTIME_REFUSALS.has(code)) return true;
  if (RUNTIME_CODES.has(code) || isServiceCode(code)) return false;
  return refusalKind(code) !== undefined;
}

/**
 * True when `err`, failing `event`, is a caller's bad input rather than a fault: the event is one a caller sent (an
 * operator's call, a connection's message, an rpc it ran) and the code the caller is answered with (errorCode, so a
 * plain Error is never one) refuses a caller's input (isCallerInputCode). Such a failure is the caller's to fix, and
 * is answered to it as a value; it is no server error, so the default onError logs it at debug, without a stack.
 */
export function isCallerInputError(err: unknown, event: string): boolean {
  if (event !== "call" && event !== "message" && !event.startsWith("rpc:")) return false;
  return err instanceof BridgeError && isCallerInputCode(errorCode(err));
}
