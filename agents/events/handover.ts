import type { AgentCell } from "../cell.ts";
import { callOnError } from "../on-error.ts";
import { queueProtocol } from "../protocol-output.ts";

/**
 * The fresh instance takes over from one that was retired (retirement.ts). First, each protocol connection for which
 * the retired instance left a state broadcast out is sent the committed state (vetted by this instance: DeviceAgent
 * measures it against the device's maxFrame), so no device is left behind its agent's state. Then onError hears of
 * the failures the retired instance could not act on, each in its own savepoint inside this event, so what it writes
 * commits with the event, or rolls back alone when it throws.
 */
export function handleHandover(
  cell: AgentCell,
  errors: ReadonlyArray<{ err: unknown; event: string }>,
  resync: readonly string[],
): null {
  const agent = cell.agent!;
  const state = cell.getState();
  if (state !== undefined) {
    for (const id of resync) {
      const conn = cell.connections.get(id);
      if (conn !== undefined) queueProtocol(cell, conn, { type: "state", state });
    }
  }
  for (const { err, event } of errors) {
    try {
      // Not returned: an async onError's promise is left to it (its rejection logged), as where onError runs outside
      // any event.
      cell.nested(() => {
        callOnError(agent, err, event);
      });
    } catch (hookErr) {
      cell.core.logger.error({ err: hookErr, agent: cell.id }, "onError threw");
    }
  }
  return null;
}
