/**
 * Queues the runtime's own protocol frames (identity, state sync) for one connection, behind the output gate of the
 * current event. Only a protocol-enabled connection gets one (protocol suppression), and only when the agent admits
 * it (`ADMIT_PROTOCOL`: DeviceAgent declines a frame larger than the device's maxFrame and says so instead).
 */
import { ADMIT_PROTOCOL } from "./agent.ts";
import type { AgentCell } from "./cell.ts";
import type { ProtocolMessage } from "./host.ts";
import { handOverStateSync } from "./retirement.ts";
import type { Connection } from "./types.ts";

export function queueProtocol(cell: AgentCell, conn: Connection, message: ProtocolMessage): void {
  if (!conn.protocol) return;
  if (!admits(cell, conn, message)) return;
  cell.output({ type: "protocol", connectionId: conn.id, message });
}

/**
 * Asks the agent whether `message` may go to `conn`. A live agent's hook that throws fails the event, as any fault
 * of its own does (its writes roll back, its frames stay). Only a hook of an agent instance retired during the event
 * (a callback timed out, retirement.ts) leaves the frame out instead: it throws for one because it reaches the
 * retired agent's storage or connections, and the event must still commit the callbacks that ran before it, state
 * changes included; a state broadcast left out so is sent by the fresh instance instead (retirement.ts, handover).
 */
function admits(cell: AgentCell, conn: Connection, message: ProtocolMessage): boolean {
  try {
    return cell.agent![ADMIT_PROTOCOL](conn, message);
  } catch (err) {
    if (cell.retired === null) throw err;
    if (message.type === "state") handOverStateSync(cell, conn.id);
    cell.core.logger.warn(
      { err, agent: cell.id, connection: conn.id, frame: message.type },
      message.type === "state"
        ? "the retired agent could not vet a state broadcast; the fresh instance sends the committed state instead"
        : "the retired agent could not vet a protocol frame, so it was not sent",
    );
    return false;
  }
}
