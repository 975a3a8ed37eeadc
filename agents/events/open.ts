import { PROTOCOL_VERSION } from "../../codecs/frames.ts";
import { withHookTimeLimit } from "../callback-timeout.ts";
import type { AgentCell } from "../cell.ts";
import { ConnectionImpl } from "../connection.ts";
import type { ConnectionInit } from "../host.ts";
import { queueProtocol } from "../protocol-output.ts";

/**
 * A connection opens: its protocol flag is decided once (shouldSendProtocolMessages) and persisted with it;
 * only a protocol connection gets identity and the current state; then onConnect.
 */
export async function handleOpen(cell: AgentCell, init: ConnectionInit): Promise<null> {
  const agent = cell.agent!;
  const conn = new ConnectionImpl(
    cell,
    {
      id: init.id,
      kind: init.kind,
      codec: init.codec,
      readonly: init.readonly === true,
      protocol: false,
      context: { ...(init.context ?? {}) },
    },
    null,
    init.transport,
  );
  const previous = cell.connections.get(conn.id);
  cell.connections.set(conn.id, conn);
  cell.onUndo(() => {
    if (previous === undefined) cell.connections.delete(conn.id);
    else cell.connections.set(conn.id, previous);
  });
  const ctx = { request: init.request };
  conn.protocol = agent.shouldSendProtocolMessages(conn, ctx) === true;
  conn.persist();
  if (conn.protocol) {
    queueProtocol(cell, conn, {
      type: "identity",
      name: agent.constructor.name,
      agent: cell.id,
      protocolVersion: PROTOCOL_VERSION,
      serverTime: cell.core.clock.now(),
    });
    // A WebSocket client always gets a state sync at open (the JSON protocol's clients wait for one). A device gets it
    // only once the agent has set a state: on MQTT, down/state is also the channel of DeviceAgent's shadow, where an
    // unset runtime state would read as "the desired state is empty".
    if (conn.kind !== "mqtt" || cell.getState() !== undefined) {
      queueProtocol(cell, conn, { type: "state", state: agent.state });
    }
  }
  await withHookTimeLimit(cell, "onConnect", agent.onConnect(conn, ctx));
  return null;
}
