import type { AgentCell } from "./cell.ts";
import { failure } from "./cell-batch.ts";
import { settleEvent } from "./cell-mailbox.ts";
import type { QueuedEvent } from "./events/types.ts";
import { snapshotClosedDatabase, vacuumInto } from "./snapshot-db.ts";

// A backup's copy of one agent's database inside its actor (the `snapshot` event): run by the drain between batches,
// so the copy holds every event before it and none after it. Functions taking the cell, like cell-batch.ts.

/** How many events from the front of `mailbox` the next batch takes: at most `max`, and none from a snapshot on. */
export function batchLength(mailbox: readonly QueuedEvent[], max: number): number {
  const end = Math.min(max, mailbox.length);
  for (let i = 0; i < end; i++) if (mailbox[i].event.kind === "snapshot") return i;
  return end;
}

/**
 * Copies the agent's database into the event's file and settles the event with the copy's size (null: the file is
 * gone). An agent in memory is copied through its own handle; one not woken (its cell was made for events still
 * waiting) is copied from the closed file, without waking it.
 */
export function runSnapshot(cell: AgentCell, item: QueuedEvent): void {
  if (item.event.kind !== "snapshot") return;
  const into = item.event.into;
  try {
    const what = `the database of agent ${cell.id}`;
    const size =
      cell.sql !== null
        ? vacuumInto(cell.sql.db, into, what)
        : copyClosedAgentDatabase(cell.core, cell.core.agentFile(cell.id), into, what);
    settleEvent(cell, item, { status: "committed", value: size });
  } catch (err) {
    settleEvent(cell, item, failure(err));
  }
}

/**
 * Copies the database of an agent that is not in memory: a close still waiting for its fsync is finished first (as a
 * wake does), so the copy's connection is the only one open, and the closer hears when it closed.
 */
export function copyClosedAgentDatabase(
  core: AgentCell["core"],
  file: string,
  into: string,
  what: string,
): number | null {
  core.closer.settle(file);
  try {
    return snapshotClosedDatabase(file, into, core.storage.lockingMode, what);
  } finally {
    core.closer.handleClosed(file);
  }
}
