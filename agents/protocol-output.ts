/**
 * Queues the runtime's own protocol frames (identity, state sync) for one connection, behind the output gate of the
 * current event. Only a protocol-enabled connection gets one (protocol suppression), and only when the agent admits
 * it (`ADMIT_PROTOCOL`: DeviceAgent declines a frame larger than the device's maxFrame and says so instead).
 */
import { ADMIT_PROTOCOL } from "./agent.ts";
import type { AgentCell } from "./cell.ts";
import type { ProtocolMessage } from "./host.ts";
import type { Connection } from "./types.ts";

export function queueProtocol(cell: AgentCell, conn: Connection, message: ProtocolMessage): void {
  if (!conn.protocol) return;
  if (!cell.agent![ADMIT_PROTOCOL](conn, message)) return;
  cell.output({ type: "protocol", connectionId: conn.id, message });
}
