import { BridgeError } from "../errors/bridge-error.ts";
import { AGENT_ERRORS } from "./errors.ts";
import type { Connection } from "./types.ts";

/**
 * The calls of the agent-facing API that change what the agent keeps (its database rows, schedules, queue, tasks,
 * state, directory entries, per-connection state, its existence), each refused inside a readonly connection's event.
 * The runtime's own statements in that event (the batch's BEGIN and COMMIT, savepoints, connection rows) do not go
 * through these calls, so they are never refused.
 */
export type AgentWrite =
  | "setState"
  | "sql"
  | "schedule"
  | "scheduleEvery"
  | "cancelSchedule"
  | "queue"
  | "dequeue"
  | "startTask"
  | "cancelTask"
  | "destroy"
  | "directory.put"
  | "connection.setState";

/**
 * Cells now running an event that a readonly connection sent (an rpc from a `?readonly=1` viewer). The input gate lets
 * only one event of an agent run at a time, so a per-cell mark is exact: while it is set, every write through the
 * agent-facing API belongs to that readonly event (a write from agent code outside events, a timer, would join its
 * transaction too, and roll back with it).
 */
const readonlyEvents = new WeakMap<object, Connection>();

/** Runs `fn` with writes refused on `cell` when `conn` is readonly (docs/protocol.md: a viewer may change nothing). */
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

function refusal(conn: Connection, operation: AgentWrite): BridgeError {
  const message = `a readonly connection may not change the agent (${operation})`;
  return new BridgeError(AGENT_ERRORS.READONLY_CONNECTION, message, { connection: conn.id, operation });
}

/** Throws BRIDGE_ERR_READONLY_CONNECTION when the event now running on `cell` came from a readonly connection. */
export function assertWritable(cell: object, operation: AgentWrite): void {
  const conn = readonlyEvents.get(cell);
  if (conn !== undefined) throw refusal(conn, operation);
}

/**
 * What `sql` runs before a statement that may write (SqlRunner.tagged): undefined, so nothing is checked, unless the
 * event now running on `cell` came from a readonly connection. A statement that only reads is never refused.
 */
export function sqlWriteCheck(cell: object): (() => void) | undefined {
  const conn = readonlyEvents.get(cell);
  if (conn === undefined) return undefined;
  return () => {
    throw refusal(conn, "sql");
  };
}
