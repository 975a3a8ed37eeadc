import type { AgentCell } from "./cell.ts";
import { enqueue } from "./cell-mailbox.ts";
import { reportError } from "./cell-scope.ts";
import { hasQueueItems, nextQueueTime } from "./queue.ts";
import { nextScheduleTime } from "./schedules.ts";
import type { Output } from "./scope.ts";

// What runs once work has committed, outside any transaction: the output gate opening for it, and the agent's entries
// in the runtime's alarm index (its next alarm, a queue flush, the pending mark as the cell leaves memory). Apart from
// the batch runner (cell-batch.ts) because the batch's COMMIT is only one of the places that call it: a write outside
// events (cell-scope.ts), an output sent outside an event (cell.ts) and the cell leaving memory (cell-lifecycle.ts)
// do too, and none of it touches the batch's transaction.

/** The output gate opening: sends, protocol frames, closes and actions of committed work, each isolated. */
export function releaseOutputs(cell: AgentCell, outputs: Output[]): void {
  for (const o of outputs) {
    try {
      if (o.type === "action") {
        o.run();
        continue;
      }
      const conn = cell.connections.get(o.connectionId);
      if (conn === undefined) continue;
      if (o.type === "send") conn.transport.send(o.message, { qos: o.qos });
      else if (o.type === "protocol") {
        // Protocol frames never reach a connection whose flag is off (protocol suppression, DESIGN section 3).
        if (conn.protocol) conn.transport.sendProtocol(o.message);
      } else conn.transport.close(o.reason);
    } catch (err) {
      cell.core.logger.warn({ err, agent: cell.id }, "transport refused an output");
    }
  }
}

/** Bookkeeping after a commit: the agent's next alarm and a queue flush (the pending mark: clearPendingOnLeave). */
export function afterBatch(cell: AgentCell): void {
  if (cell.closed || !cell.inMemory) return;
  const alarms = cell.core.alarms;
  try {
    if (cell.alarmDirty) {
      cell.alarmDirty = false;
      const a = nextScheduleTime(cell);
      const b = nextQueueTime(cell);
      alarms.set(cell.id, a === null ? b : b === null ? a : Math.min(a, b));
    }
    if (cell.queueDirty) {
      cell.queueDirty = false;
      if (hasQueueItems(cell)) {
        // Its outcome goes to the runtime: a flush that fails as a whole is set again as an alarm, with backoff.
        const core = cell.core;
        const id = cell.id;
        enqueue(cell, { event: { kind: "queue" }, user: false, resolve: (o) => core.queueFlushSettled(id, o) });
        return;
      }
    }
  } catch (err) {
    reportError(cell, err, "alarm-index");
  }
}

/**
 * Clears the agent's pending mark (for restarts) as the cell leaves memory (hibernation, eviction by the cap,
 * shutdown), once it has no queue item and no task row left. Not after every batch: the mark only makes the next
 * start wake the agent, so keeping it while the agent is in memory loses nothing, and clearing it per task cost two
 * SELECTs and an autocommit to the runtime database per reasoning answer, and one more autocommit to set it again at
 * the next question (about 2% of the bridge's CPU at 256 streaming devices, docs/benchmarks.md). The price: after a
 * crash, each agent that was in memory with a task or queue item since it last woke is woken once at the next start,
 * finds nothing, and its mark goes then.
 */
export function clearPendingOnLeave(cell: AgentCell): void {
  const alarms = cell.core.alarms;
  if (cell.closed || !cell.inMemory || cell.running) return;
  // A refused directory index write whose retry has not landed: the mark makes the next start wake the agent, whose
  // start event puts it back (after a crash: the retries live in memory only).
  if (!alarms.isPending(cell.id) || cell.tasks.size > 0 || cell.core.directoryIndex.isUnsynced(cell.id)) return;
  try {
    if (hasQueueItems(cell)) return;
    if (cell.sqlRunner().get("SELECT 1 FROM _bridge_tasks LIMIT 1") === undefined) alarms.clearPending(cell.id);
  } catch (err) {
    reportError(cell, err, "alarm-index");
  }
}
