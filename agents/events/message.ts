import { BridgeError } from "../../errors/bridge-error.ts";
import type { AgentCell } from "../cell.ts";
import { withHookTimeLimit } from "../callback-timeout.ts";
import { AGENT_ERRORS } from "../errors.ts";
import type { InboundMessage } from "../host.ts";
import { runAsConnection } from "../readonly-guard.ts";

/** A decoded inbound message from an open connection goes to onMessage. */
export function handleMessage(cell: AgentCell, connectionId: string, message: InboundMessage): void | Promise<void> {
  const conn = cell.connections.get(connectionId);
  if (conn === undefined) {
    throw new BridgeError(AGENT_ERRORS.CONNECTION_UNKNOWN, "no open connection with this id", { connectionId });
  }
  // Returned, not awaited here: the batch awaits it once (one promise layer less per event). A readonly connection's
  // event may read and call, but every write of the agent-facing API throws inside it (an rpc from a viewer must change
  // nothing). Bounded inside the readonly mark, so a timed-out hook does not leave the mark set; an rpc runs inside
  // onMessage.
  return runAsConnection(cell, conn, () => withHookTimeLimit(cell, "onMessage", cell.agent!.onMessage(conn, message)));
}
