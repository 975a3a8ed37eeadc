import { performance } from "node:perf_hooks";
import type { Value } from "../codecs/frames.ts";
import { BridgeError } from "../errors/bridge-error.ts";
import type { AgentCell } from "./cell.ts";
import { AGENT_ERRORS, errorCode, errorMessage } from "./errors.ts";
import { dispatchEvent } from "./events/index.ts";
import { hasQueueItems, nextQueueTime } from "./queue.ts";
import { nextScheduleTime } from "./schedules.ts";
import type { EventOutcome, QueuedEvent } from "./events/types.ts";
import { type Output, Scope } from "./scope.ts";
import { encodeValue } from "./value-codec.ts";

// The batch, commit and output-gate part of AgentCell (cell.ts): the events waiting when a batch starts run in one
// transaction with a SAVEPOINT each (group commit), and their outputs leave only after COMMIT (output gate).

/** Runs one batch of a cell's mailbox in one transaction and resolves each event with its outcome. */
export async function runBatch(cell: AgentCell, batch: QueuedEvent[]): Promise<void> {
  const sql = cell.sqlRunner();
  const t0 = performance.now();
  const done: Array<{ item: QueuedEvent; scope: Scope; outcome: EventOutcome }> = [];
  // A batch of one needs no savepoint: rolling back its transaction rolls back exactly that event.
  const savepoints = batch.length > 1;
  // Lazy: a batch that writes nothing (task progress that only sends frames) never reaches SQLite's BEGIN/COMMIT.
  sql.beginLazy();
  const timed = cell.core.observer.onEvent !== undefined;
  for (const item of batch) {
    const e0 = timed ? performance.now() : 0;
    const scope = new Scope(null);
    cell.setScope(scope);
    let outcome: EventOutcome;
    if (savepoints) sql.control("SAVEPOINT ev");
    try {
      // Sync handlers skip the await: one microtask less per event on the hot path.
      let value = dispatchEvent(cell, item.event);
      if (value instanceof Promise) value = await value;
      if (!sql.inTransaction) {
        // A storage fault ended the transaction: nothing more may be written outside it.
        throw new BridgeError(AGENT_ERRORS.STORAGE, "the event's transaction was lost", { event: item.event.kind });
      }
      if (scope.stateSource !== null) await finishState(cell, scope);
      if (savepoints) sql.control("RELEASE ev");
      outcome = { status: "committed", value: (value ?? null) as Value };
    } catch (err) {
      if (sql.inTransaction) {
        if (savepoints) {
          sql.control("ROLLBACK TO ev");
          sql.control("RELEASE ev");
        } else sql.control("ROLLBACK");
      }
      scope.rollback();
      outcome = failure(err);
      cell.setScope(null);
      cell.reportError(err, item.event.kind);
      if (!sql.inTransaction) {
        // SQLite rolled the whole transaction back (a fault such as SQLITE_FULL while spilling): the earlier events
        // of this batch are gone too, so they fail with it, and the rest start a fresh transaction.
        for (let i = done.length - 1; i >= 0; i--) done[i].scope.rollback();
        for (const d of done) d.outcome = outcome;
        sql.beginLazy();
      }
    }
    cell.setScope(null);
    done.push({ item, scope, outcome });
    if (timed)
      cell.core.observer.onEvent?.({
        agentId: cell.id,
        kind: item.event.kind,
        status: outcome.status,
        durationMs: performance.now() - e0,
      });
  }
  // Nothing reached SQLite: there is nothing to commit, and the frames may leave at once (the output gate holds).
  const wrote = sql.wrote;
  try {
    sql.control("COMMIT");
    if (wrote) cell.core.countCommit();
  } catch (err) {
    if (sql.inTransaction) sql.control("ROLLBACK");
    for (let i = done.length - 1; i >= 0; i--) done[i].scope.rollback();
    const outcome = failure(err);
    for (const d of done) d.outcome = outcome;
    cell.reportError(err, "commit");
  }
  if (wrote)
    cell.core.observer.onCommit?.({ agentId: cell.id, events: batch.length, durationMs: performance.now() - t0 });
  for (const d of done) {
    if (d.outcome.status === "committed") releaseOutputs(cell, d.scope.outputs);
    d.item.resolve(d.outcome);
  }
}

/** Persists a state changed in this event, queues its broadcast, then runs onStateChanged in its own savepoint. */
async function finishState(cell: AgentCell, scope: Scope): Promise<void> {
  const changed = scope.stateSource;
  if (changed === null) return;
  const state = cell.getState() ?? null;
  const bytes = encodeValue(state);
  if (bytes.length > cell.core.storage.maxDatabaseBytes) {
    throw new BridgeError(AGENT_ERRORS.STATE_TOO_LARGE, "state is larger than the agent database cap", {
      bytes: bytes.length,
      maxDatabaseBytes: cell.core.storage.maxDatabaseBytes,
    });
  }
  cell.writeStateBytes(scope, bytes);
  for (const conn of cell.connections.values()) {
    if (conn.protocol && conn.id !== changed.source) {
      scope.outputs.push({ type: "protocol", connectionId: conn.id, message: { type: "state", state } });
    }
  }
  const source = changed.source === null ? null : (cell.connections.get(changed.source) ?? null);
  const agent = cell.agent!;
  try {
    await cell.nestedAsync(async () => agent.onStateChanged(state, source));
  } catch (err) {
    cell.reportError(err, "onStateChanged");
  }
}

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

/** Bookkeeping after a commit: the agent's next alarm, a queue flush, and the pending mark for restarts. */
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
    // Read only when it decides something: a queue flush, or clearing the pending mark (which a running task
    // forbids anyway). A running task keeps its agent pending, so asking on every batch cost a SELECT per streamed
    // chunk.
    const hasQueue =
      cell.queueDirty || (alarms.isPending(cell.id) && cell.tasks.size === 0) ? hasQueueItems(cell) : false;
    if (cell.queueDirty) {
      cell.queueDirty = false;
      if (hasQueue) cell.enqueue({ event: { kind: "queue" }, user: false, resolve: () => {} });
    }
    if (alarms.isPending(cell.id) && !hasQueue && cell.tasks.size === 0) {
      const taskRows = cell.sqlRunner().get("SELECT 1 FROM _bridge_tasks LIMIT 1");
      if (taskRows === undefined) alarms.clearPending(cell.id);
    }
  } catch (err) {
    cell.reportError(err, "alarm-index");
  }
}

/** An event outcome for a failure: the stable code and message of `err`. */
export function failure(err: unknown): EventOutcome {
  return { status: "failed", code: errorCode(err), message: errorMessage(err) };
}
