import type { Value } from "../codecs/frames.ts";
import { BridgeError } from "../errors/bridge-error.ts";
import type { AgentCell } from "./cell.ts";
import { AGENT_ERRORS, errorCode } from "./errors.ts";
import { invokeMethod } from "./invoke.ts";
import { markRetired } from "./retirement.ts";

/** What ran the callback: in error details and log lines. */
export type CallbackKind = "schedule" | "queue";

/**
 * Calls `agent[method](...args)` for a schedule or a queue item with a time limit. The callback runs inside its event
 * and holds the agent's mailbox until it settles (one event at a time per agent), so one that never settles would stall
 * every later message of the device. A synchronous method returns as before (nothing to wait for); a promise that
 * has not settled within `callbackTimeoutMs` on the runtime's clock rejects with BRIDGE_ERR_CALLBACK_TIMEOUT, which the
 * caller treats as any throw (savepoint rolled back, frames dropped, retry options, then onError), and the agent
 * instance is retired (retirement.ts) so that what the promise does later cannot reach the agent's storage.
 */
export function invokeCallback(
  cell: AgentCell,
  kind: CallbackKind,
  method: string,
  args: unknown[],
): Value | Promise<Value> {
  const result = invokeMethod(cell.agent!, method, args);
  if (!(result instanceof Promise)) return result;
  const { clock, callbackTimeoutMs } = cell.core;
  return new Promise<Value>((resolve, reject) => {
    let timedOut = false;
    const timer = clock.setTimeout(() => {
      timedOut = true;
      const err = new BridgeError(
        AGENT_ERRORS.CALLBACK_TIMEOUT,
        `${kind} callback ${method} did not settle within callbackTimeoutMs (${callbackTimeoutMs} ms)`,
        { kind, method, timeoutMs: callbackTimeoutMs },
      );
      markRetired(cell, err);
      reject(err);
    }, callbackTimeoutMs);
    result.then(
      (value) => {
        if (timedOut) return settledLate(cell, kind, method, null);
        clock.clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        // Handled here even when late: the process treats an unhandled rejection as a fatal fault.
        if (timedOut) return settledLate(cell, kind, method, err);
        clock.clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/** The promise of a timed-out callback settled after all: its event is long over, so its outcome is only logged. */
function settledLate(cell: AgentCell, kind: CallbackKind, method: string, err: unknown): void {
  cell.core.logger.warn(
    err === null ? { agent: cell.id, kind, method } : { agent: cell.id, kind, method, err, code: errorCode(err) },
    err === null
      ? "a callback that timed out resolved later; its result is dropped"
      : "a callback that timed out failed later; its error is dropped",
  );
}
