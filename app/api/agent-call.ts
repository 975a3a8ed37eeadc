/**
 * Calls one DeviceAgent method for a route: checks the device exists (404 otherwise, without waking any agent),
 * runs the method as a mailbox event, and turns an agent's expected failure into an ApiError with a fitting status.
 * The promise resolves only after the event committed, so a 2xx always means stored.
 */
import type { Value } from "../../codecs/frames.ts";
import type { OperatorDeps, OperatorDeviceRecord } from "./deps.ts";
import { API_ERROR_CODES, ApiError, statusForAgentCode } from "./errors.ts";

/**
 * The statuses {@link callDeviceAgent} answers besides a 404, for the OpenAPI document of a route that calls it
 * (`config.errorResponses`).
 */
export const AGENT_CALL_RESPONSES: Readonly<Record<number, string>> = {
  410: "The device was removed while the request waited for its agent (BRIDGE_ERR_AGENT_DESTROYED)",
  503: "The bridge is shutting down (BRIDGE_ERR_RUNTIME_CLOSED) or the agent cannot start yet; Retry-After when known",
};

/**
 * The 503 of a route that reaches the runtime without waiting for a device's agent (its directory, `destroyAgent`):
 * it is answered once the runtime has shut down, for the OpenAPI document (`config.errorResponses`).
 */
export const RUNTIME_CLOSED_RESPONSES: Readonly<Record<number, string>> = {
  503: "The bridge is shutting down (BRIDGE_ERR_RUNTIME_CLOSED)",
};

/** Returns the registry record of `id`, or throws a 404 ApiError naming the `id` parameter. */
export async function requireDevice(
  deps: OperatorDeps,
  id: string,
  idField = "params.id",
): Promise<OperatorDeviceRecord> {
  const record = deps.registry.get(id);
  if (record === undefined) {
    throw new ApiError(404, API_ERROR_CODES.deviceNotFound, `device ${id} is not registered`, idField);
  }
  return record;
}

/** Runs `method` on the device's agent and returns its value, or throws an ApiError for an agent failure. */
export async function callDeviceAgent(
  deps: OperatorDeps,
  id: string,
  method: string,
  args: Value[],
  idField = "params.id",
): Promise<Value> {
  await requireDevice(deps, id, idField);
  let result: Awaited<ReturnType<OperatorDeps["runtime"]["call"]>>;
  try {
    result = await deps.runtime.call(id, method, args);
  } catch (err) {
    // A thrown fault (not an agent's expected failure): keep the cause for the log, answer 500.
    throw new ApiError(500, API_ERROR_CODES.internal, `agent ${id} failed to run ${method}`, undefined, { cause: err });
  }
  if (!result.ok) {
    throw new ApiError(statusForAgentCode(result.code), result.code, result.message, undefined, {
      retryAfterMs: result.retryInMs,
    });
  }
  return result.value;
}
