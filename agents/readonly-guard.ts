import { BridgeError } from "../errors/bridge-error.ts";
import { AGENT_ERRORS } from "./errors.ts";
import type { Connection } from "./types.ts";

/**
 * Cells now running an event that a readonly connection sent (an rpc from a `?readonly=1` viewer). The input gate lets
 * only one event of an agent run at a time, so a per-cell mark is exact: while it is set, every write through
 * `setState` belongs to that readonly event.
 */
const readonlyEvents = new WeakMap<object, Connection>();

/** Runs `fn` with state changes refused on `cell` when `conn` is readonly (docs/protocol.md: a viewer may not change state). */
export function runAsConnection<T>(cell: object, conn: Connection, fn: () => T | Promise<T>): T | Promise<T> {
  // The common case (a device, a read-write client) costs no extra promise layer.
  if (!conn.readonly) return fn();
  readonlyEvents.set(cell, conn);
  const clear = () => readonlyEvents.delete(cell);
  try {
    const result = fn();
    if (result instanceof Promise) return result.finally(clear);
    clear();
    return result;
  } catch (err) {
    clear();
    throw err;
  }
}

/** Throws BRIDGE_ERR_READONLY_CONNECTION when the event now running on `cell` came from a readonly connection. */
export function assertStateWritable(cell: object): void {
  const conn = readonlyEvents.get(cell);
  if (conn !== undefined) {
    throw new BridgeError(AGENT_ERRORS.READONLY_CONNECTION, "a readonly connection may not change state", {
      connection: conn.id,
    });
  }
}
