import { withHookTimeLimit } from "../callback-timeout.ts";
import type { AgentCell } from "../cell.ts";
import type { CloseReason } from "../host.ts";

/**
 * A connection closed. onClose runs in its own savepoint so a throwing hook cannot keep a dead connection's row:
 * the row is removed whatever the hook does. One that does not settle within callbackTimeoutMs fails the same way
 * (and retires the agent instance, callback-timeout.ts): the close still commits, so the next instance does not take
 * the row for a connection of a previous process and close it again.
 */
export async function handleClose(cell: AgentCell, connectionId: string, reason: CloseReason): Promise<null> {
  const conn = cell.connections.get(connectionId);
  if (conn === undefined) return null;
  try {
    await cell.nestedAsync(async () => withHookTimeLimit(cell, "onClose", cell.agent!.onClose(conn, reason)));
  } catch (err) {
    cell.reportError(err, "onClose");
  }
  cell.sqlRunner().run("DELETE FROM _bridge_connections WHERE id = ?", connectionId);
  cell.connections.delete(connectionId);
  cell.onUndo(() => cell.connections.set(connectionId, conn));
  return null;
}
