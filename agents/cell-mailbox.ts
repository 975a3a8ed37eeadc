import type { AgentCell } from "./cell.ts";
import { failure, runBatch } from "./cell-batch.ts";
import { finishDestroy, retireCell, wakeCell } from "./cell-lifecycle.ts";
import { batchLength, runSnapshot } from "./cell-snapshot.ts";
import { reportError } from "./cell-scope.ts";
import type { EventOutcome, QueuedEvent } from "./events/types.ts";
import { dropUncommittedTasks } from "./tasks.ts";

// The mailbox and drain of AgentCell (cell.ts): events wait in `cell.mailbox` and run strictly one batch at a time
// (the input gate is `cell.running`); a batch runs through cell-batch.ts. Functions taking the cell, like
// cell-batch.ts, so the cell's file stays its fields and entry points while this one holds the drain loop.

/** Starts a drain on the next microtask (see enqueue). */
const RESOLVED = Promise.resolve();

/** AgentCell.enqueue: adds an event and starts a drain unless one runs. */
export function enqueue(cell: AgentCell, item: QueuedEvent): void {
  if (cell.closed) {
    // A hibernated or destroyed cell never drains again: the event goes to the agent's current cell (or fails
    // with BRIDGE_ERR_RUNTIME_CLOSED), so no event is ever left unresolved here.
    cell.core.reroute(cell.id, item);
    return;
  }
  cell.mailbox.push(item);
  if (item.user) cell.userDepth++;
  // No clock read here: an agent with events waiting is running, and a running agent is never idle-evicted; the
  // drain stamps lastActiveMs when it stops.
  if (!cell.running) {
    // Start on the next microtask, so events delivered in the same tick share one group commit. A resolved
    // promise's then, not queueMicrotask: Node wraps each queueMicrotask callback in an AsyncResource, which cost
    // more than the rest of the mailbox's work for a one-event batch.
    cell.running = true;
    RESOLVED.then(cell.startDrain);
  }
}

/** AgentCell.waitForCapacity: resolves when the bounded part of the mailbox has room again, or the cell closed. */
export function waitForCapacity(cell: AgentCell): Promise<void> {
  if (cell.closed) return Promise.resolve();
  return new Promise((resolve) => cell.capacityWaiters.push(resolve));
}

export function releaseCapacityWaiters(cell: AgentCell): void {
  if (cell.capacityWaiters.length === 0) return;
  const waiters = cell.capacityWaiters;
  cell.capacityWaiters = [];
  for (const w of waiters) w();
}

/**
 * Gives an event its outcome. The callback is the caller's promise for a device message or an operator call, but for
 * an alarm or a queue flush it is the runtime's own bookkeeping, which writes to the runtime database (a failed one
 * sets the agent's alarm again with backoff) and so can throw. Such a throw is logged here: it must not keep the
 * events settled after this one from their outcomes, nor reach the drain, which would abandon a batch whose events
 * already have theirs (abandonBatch would settle them again and run a committed task report twice).
 */
export function settleEvent(cell: AgentCell, item: QueuedEvent, outcome: EventOutcome): void {
  try {
    item.resolve(outcome);
  } catch (err) {
    cell.core.logger.error({ err, agent: cell.id, event: item.event.kind }, "an event's outcome callback threw");
  }
}

/** Hands every queued event of a closed cell on (see enqueue) and wakes transports waiting for capacity. */
export function evacuate(cell: AgentCell): void {
  const items = cell.mailbox.splice(0);
  cell.userDepth = 0;
  releaseCapacityWaiters(cell);
  for (const item of items) cell.core.reroute(cell.id, item);
}

/**
 * Runs batches until the mailbox is empty. Synchronous while the batches finish synchronously (see runBatch);
 * an async batch hands the rest of the drain to its promise, and `running` stays true until the drain stops.
 */
export function drain(cell: AgentCell): void {
  let handedOff = false;
  try {
    // The batch that ended has retired the agent instance (a callback timed out): the cell leaves memory, and the
    // rest of its mailbox runs on a fresh instance (stopDrain hands it on). With a destroy pending there is no fresh
    // instance: the retired one runs nothing more (every batch would hand its events straight back, forever), and
    // stopDrain finishes the destroy, which fails what waits.
    if (cell.retired !== null && !cell.closed && cell.pendingDestroy === null) retireCell(cell);
    while (cell.mailbox.length > 0 && !cell.closed && cell.retired === null) {
      // A backup's copy runs alone, between batches: the events before it have committed, those after it wait.
      if (cell.mailbox[0].event.kind === "snapshot") {
        runSnapshot(cell, cell.mailbox.shift()!);
        continue;
      }
      const taken = cell.mailbox.splice(0, batchLength(cell.mailbox, cell.core.maxBatchEvents));
      for (const item of taken) if (item.user) cell.userDepth--;
      releaseCapacityWaiters(cell);
      // A report of a task with an earlier report held for a later try (retryReportLater) waits behind it.
      const batch = cell.core.holdBehindReports(cell.id, taken);
      if (batch.length === 0) continue;
      if (cell.sql === null) {
        // An agent whose onStart keeps timing out is not woken until its backoff ends (start-backoff.ts): the batch
        // fails as a failed wake's does, with BRIDGE_ERR_AGENT_START_TIMEOUT, and nothing of the agent runs.
        const refused = cell.core.startBackoff.refusal(cell.id);
        try {
          if (refused !== null) throw refused;
          wakeCell(cell);
        } catch (err) {
          for (const item of batch) {
            if (isOnlyInMailbox(item)) retryReportLater(cell, item);
            else settleEvent(cell, item, failure(err));
          }
          // A refusal is counted for the backoff's next log line (one per step), not logged once per event.
          if (refused !== null && err === refused)
            cell.core.observer.onError?.({ agentId: cell.id, event: "wake", code: refused.code });
          else reportError(cell, err, "wake");
          continue;
        }
        const settledTasks = settledTaskIds([batch, cell.mailbox, cell.core.heldEvents(cell.id)]);
        batch.unshift({ event: { kind: "start", settledTasks }, user: false, resolve: () => {} });
      }
      let pending: Promise<void> | undefined;
      try {
        pending = runBatch(cell, batch, cell.afterAsyncBatch);
      } catch (err) {
        abandonBatch(cell, batch, err);
      }
      if (pending !== undefined) {
        handedOff = true;
        pending.catch((err: unknown) => {
          // A storage fault outside any handler (BEGIN or ROLLBACK failing): see abandonBatch.
          abandonBatch(cell, batch, err);
          cell.afterAsyncBatch();
        });
        return;
      }
      if (destroyDue(cell)) break;
    }
  } finally {
    if (!handedOff) stopDrain(cell);
  }
}

/**
 * The tasks whose outcome event waits in the batch, the mailbox or for a later try (retryReportLater) as the cell
 * wakes. They ended while an earlier handle
 * was open (its instance was retired after a callback timed out, or its batch abandoned) and their rows are still
 * there: the start event must leave those rows to their outcome events, not report the tasks as interrupted.
 * Undefined when there is none (a wake after hibernation: an agent with tasks never hibernates).
 */
function settledTaskIds(lists: ReadonlyArray<readonly QueuedEvent[]>): Set<string> | undefined {
  let ids: Set<string> | undefined;
  for (const list of lists) {
    for (const { event } of list) {
      if (event.kind !== "task-done" && event.kind !== "task-failed") continue;
      ids ??= new Set();
      ids.add(event.taskId);
    }
  }
  return ids;
}

/**
 * The cell's `startDrain`: the microtask that starts a drain. Made once per cell, not once per batch, so starting a
 * drain allocates nothing. Never throws, so the microtask's promise never rejects.
 */
export function drainStarter(cell: AgentCell): () => void {
  return () => {
    try {
      drain(cell);
    } catch (err) {
      drainFailed(cell, err);
    }
  };
}

/**
 * The cell's `afterAsyncBatch`: the rest of a drain after an async batch, run by the batch in the turn it committed
 * in. Made once per cell, like drainStarter. Never throws.
 */
export function drainContinuation(cell: AgentCell): () => void {
  return () => {
    try {
      if (destroyDue(cell)) stopDrain(cell);
      else drain(cell);
    } catch (err) {
      drainFailed(cell, err);
    }
  };
}

function drainFailed(cell: AgentCell, err: unknown): void {
  cell.core.logger.error({ err, agent: cell.id }, "mailbox drain failed");
}

/** The drain stopped: hand a closed cell's rest on, finish a destroy, or tell the runtime the cell is idle. */
function stopDrain(cell: AgentCell): void {
  cell.running = false;
  cell.lastActiveMs = cell.core.clock.monotonicNow();
  try {
    if (cell.closed) evacuate(cell);
    else if (destroyDue(cell)) finishDestroy(cell);
    else cell.core.cellIdle(cell.id);
  } catch (err) {
    reportError(cell, err, "lifecycle");
  }
}

/**
 * A destroy was asked: it finishes after the batch that was running when it was asked, and finishDestroy fails what
 * waits in the mailbox ("agent destroyed"). Not once the mailbox is empty: a device that keeps sending would keep its
 * agent, and the DELETE that asked for its end, waiting for good, and each of those events would be acknowledged by
 * an agent whose data is about to go.
 */
function destroyDue(cell: AgentCell): boolean {
  return cell.pendingDestroy !== null;
}

/**
 * Events handed back once (handBackOnlyInMailbox). Once only: a fault that persists abandons every batch, and an event
 * handed back each time would run again and again in one synchronous drain.
 */
const handedBack = new WeakSet<QueuedEvent>();

/**
 * An event that nobody else could send again: unlike a device message (resent unacked) or an alarm (set again,
 * runtime-alarms.ts), it exists only in the mailbox, so failing it with its batch would lose it. A task's report
 * (progress or outcome): a task that had ended would be reported as interrupted at the next wake. A handover
 * (retirement.ts): the retired instance's failures would never reach onError, and a connection that missed its state
 * broadcast would stay behind the agent's state.
 */
export function isOnlyInMailbox(item: QueuedEvent): boolean {
  const kind = item.event.kind;
  return kind === "task-done" || kind === "task-failed" || kind === "task-progress" || kind === "handover";
}

/** How many times each such event was sent back for a later try (retryReportLater), for its backoff. */
const reportRetries = new WeakMap<QueuedEvent, number>();

/**
 * A task's report (or a handover) whose wake failed, or whose batch failed again after its one immediate hand-back:
 * it runs again later, with the backoff of a failed alarm (1 s doubling to 5 min), not at once, since the same
 * failure would repeat in the same drain. The event itself waits (one timer, never in the mailbox meanwhile), so there
 * is at most one try of it in flight, and a lasting fault costs one try per backoff step, never a loop.
 */
function retryReportLater(cell: AgentCell, item: QueuedEvent): void {
  const tries = (reportRetries.get(item) ?? 0) + 1;
  reportRetries.set(item, tries);
  cell.core.retryEventLater(cell.id, item, tries);
}

/**
 * Events only the mailbox holds (isOnlyInMailbox) of a batch that failed as a whole after or before they ran
 * (abandoned, its COMMIT failed, or SQLite lost its transaction), in batch order: instead of failing, each goes back
 * to the front of the mailbox to run again at once, or, handed back once already, runs later with backoff
 * (retryReportLater). Their writes rolled back with the batch (a task's row is still there), so they run in full.
 */
export function handBackOnlyInMailbox(cell: AgentCell, items: readonly QueuedEvent[]): void {
  const again: QueuedEvent[] = [];
  for (const item of items) {
    if (handedBack.has(item)) retryReportLater(cell, item);
    else {
      handedBack.add(item);
      again.push(item);
    }
  }
  cell.mailbox.unshift(...again);
}

function abandonBatch(cell: AgentCell, batch: QueuedEvent[], err: unknown): void {
  cell.scope = null;
  try {
    cell.sql?.rollback();
  } catch {}
  // The batch's undo steps never ran: the tasks its events started would run on (and leak) for rows never written.
  dropUncommittedTasks(cell);
  // A task's report (or a handover) goes back to the front of the mailbox instead (its writes rolled back with the
  // batch, and the agent object that saw it is dropped below): the wake that follows runs it on a fresh handle, and
  // its start event leaves a task's row to its report (settledTaskIds).
  const back: QueuedEvent[] = [];
  for (const item of batch) {
    if (isOnlyInMailbox(item)) back.push(item);
    else settleEvent(cell, item, failure(err));
  }
  handBackOnlyInMailbox(cell, back);
  reportError(cell, err, "batch");
  // Memory may now differ from the database: drop the handle and object so the next event reloads both.
  try {
    cell.sql?.close();
  } catch {}
  cell.sql = null;
  cell.agent = null;
  cell.connections.clear();
}
