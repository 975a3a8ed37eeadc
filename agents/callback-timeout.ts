import type { Value } from "../codecs/frames.ts";
import { BridgeError } from "../errors/bridge-error.ts";
import type { AgentCell } from "./cell.ts";
import { AGENT_ERRORS, errorCode } from "./errors.ts";
import { invokeMethod } from "./invoke.ts";
import { markRetired } from "./retirement.ts";

/**
 * What ran the callback, in error details and log lines: a schedule callback, a queue item's method, an operator call
 * (`runtime.call`), or the hook of that name (a device's up/rpc runs inside `onMessage`).
 */
export type CallbackKind =
  | "schedule"
  | "queue"
  | "call"
  | "onStart"
  | "onConnect"
  | "onMessage"
  | "onClose"
  | "onStateChanged"
  | "onTaskProgress"
  | "onTaskDone"
  | "onTaskFailed"
  | "onTaskInterrupted";

/** The callbacks that call an agent method by name. */
export type MethodKind = "schedule" | "queue" | "call";

/** The hooks, each named by its kind. */
export type HookKind = Exclude<CallbackKind, MethodKind>;

/** Calls `agent[method](...args)` for a schedule, a queue item or an operator call, with a time limit (below). */
export function invokeCallback(
  cell: AgentCell,
  kind: MethodKind,
  method: string,
  args: unknown[],
): Value | Promise<Value> {
  return withTimeLimit(cell, kind, method, invokeMethod(cell.agent!, method, args));
}

/**
 * Bounds the wait for a callback the runtime awaits inside an event (`result` is what the callback returned). The
 * callback holds the agent's mailbox until it settles (one event at a time per agent), so one that never settles would
 * stall every later message of the device, and a destroy. A synchronous result is returned as it is: no timer, no
 * promise, so the batch's synchronous path stays free of both. A promise that has not settled within
 * `callbackTimeoutMs` on the runtime's clock rejects with BRIDGE_ERR_CALLBACK_TIMEOUT, which the caller treats as any
 * throw (savepoint rolled back, frames dropped, retry options, onError), and the agent instance is retired
 * (retirement.ts) so that what the promise does later cannot reach the agent's storage.
 */
export function withTimeLimit<T>(
  cell: AgentCell,
  kind: CallbackKind,
  method: string,
  result: T | Promise<T>,
): T | Promise<T> {
  if (!(result instanceof Promise)) return result;
  const { clock, callbackTimeoutMs } = cell.core;
  return new Promise<T>((resolve, reject) => {
    let timedOut = false;
    const timer = clock.setTimeout(() => {
      timedOut = true;
      const what = kind === method ? kind : `${kind} callback ${method}`;
      const err = new BridgeError(
        AGENT_ERRORS.CALLBACK_TIMEOUT,
        `${what} did not settle within callbackTimeoutMs (${callbackTimeoutMs} ms)`,
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

/** What a hook of the agent returned, bounded as above: `withHookTimeLimit(cell, "onClose", agent.onClose(...))`. */
export function withHookTimeLimit<T>(cell: AgentCell, hook: HookKind, result: T | Promise<T>): T | Promise<T> {
  return withTimeLimit(cell, hook, hook, result);
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
