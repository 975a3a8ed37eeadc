import type { AgentCell } from "../cell.ts";
import type { CloseReason } from "../host.ts";

/**
 * A connection closed. onClose runs in its own savepoint so a throwing hook cannot keep a dead connection's row:
 * the row is removed whatever the hook does.
 */
export async function handleClose(cell: AgentCell, connectionId: string, reason: CloseReason): Promise<null> {
  const conn = cell.connections.get(connectionId);
  if (conn === undefined) return null;
  try {
    await cell.nestedAsync(async () => cell.agent!.onClose(conn, reason));
  } catch (err) {
    cell.reportError(err, "onClose");
  }
  cell.sqlRunner().run("DELETE FROM _bridge_connections WHERE id = ?", connectionId);
  cell.connections.delete(connectionId);
  cell.onUndo(() => cell.connections.set(connectionId, conn));
  return null;
}
