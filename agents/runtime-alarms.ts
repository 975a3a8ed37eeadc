import { AGENT_ERRORS } from "./errors.ts";
import type { EventOutcome, QueuedEvent } from "./events/types.ts";
import type { Runtime } from "./runtime.ts";
import { enqueueInternal, reroute } from "./runtime-registry.ts";

/**
 * Events waiting for a later try under one timer (Runtime.eventRetries): a task's reports, in the order the task made
 * them; `taskId` is undefined for any other event (each then waits alone).
 */
export interface HeldEvents {
  agentId: string;
  taskId: string | undefined;
  items: QueuedEvent[];
}

/** First wait before an alarm whose event failed is tried again; it doubles with each failure in a row, up to the max. */
export const ALARM_RETRY_FIRST_MS = 1_000;
export const ALARM_RETRY_MAX_MS = 300_000;

/** The alarm index woke `agentId`: its alarm event runs, and a failure of the whole event is tried again later. */
export function fireAlarm(rt: Runtime, agentId: string): void {
  enqueueInternal(rt, agentId, { kind: "alarm" }, (outcome) => alarmSettled(rt, agentId, outcome));
}

/**
 * A failing schedule callback or queue item is retried by its own options inside a committed alarm event; this is
 * for the event failing as a whole (SQLite abandoned its transaction, the agent could not wake). The index had
 * marked the alarm fired and nothing would set it again until some other event recomputed it, so a sleeping agent's
 * schedules and queue retries stopped until the next restart. It is set again after a backoff, not at once: a fault
 * that persists must not become a loop.
 */
function alarmSettled(rt: Runtime, agentId: string, outcome: EventOutcome): void {
  if (outcome.status !== "failed") {
    rt.alarms.clearBackoff(agentId);
    return;
  }
  setAlarmAgain(rt, agentId, outcome.code, "alarm");
}

/**
 * A queue flush (the event a commit that queued items asks for) settled. One that failed as a whole (the state it
 * left too large, a storage fault, an abandoned batch, a failed wake) left its items due with nothing to flush them:
 * the queue event is asked for only by a commit that queued something. The alarm event flushes the queue too, so the
 * agent's alarm is set again with the alarm's backoff, and its failures in a row count together with the alarm's (a
 * committed alarm event once the backoff is over resets them; a committed flush leaves them to it; an alarm that goes
 * away ends them).
 */
export function queueFlushSettled(rt: Runtime, agentId: string, outcome: EventOutcome): void {
  if (outcome.status === "failed") setAlarmAgain(rt, agentId, outcome.code, "queue");
}

/** The backoff for the agent's `failures`-th event failing as a whole in a row: 1 s doubling, up to 5 min. */
export function eventRetryDelayMs(failures: number): number {
  return Math.min(ALARM_RETRY_MAX_MS, ALARM_RETRY_FIRST_MS * 2 ** (failures - 1));
}

function setAlarmAgain(rt: Runtime, agentId: string, code: string, event: "alarm" | "queue"): void {
  // Dropped, not failed: the agent was destroyed (its mailbox failed with BRIDGE_ERR_AGENT_DESTROYED) or the runtime
  // is closing (start() wakes agents with pending work again). Setting the alarm would write a row for a destroyed
  // agent.
  if (rt.closing || rt.closed || code === AGENT_ERRORS.AGENT_DESTROYED) return;
  const { failures, delayMs } = rt.alarms.backOff(agentId, eventRetryDelayMs);
  // backOff set the alarm to the backoff's end, which is right for the work it holds, but the agent may have work due
  // sooner that it does not hold (a queue item's retry, a schedule due after the failure): the alarm is computed
  // again from the agent's rows, knowing the hold, by the bookkeeping that follows the failed event's batch (in the
  // same turn, cell-after-batch.ts, afterBatch), or by the next wake when the failure left no open handle.
  const cell = rt.cells.get(agentId);
  if (cell !== undefined) cell.alarmDirty = true;
  rt.core.logger.warn(
    { agent: agentId, event, failures, retryInMs: delayMs, code },
    "event failed as a whole; the agent's alarm is set again later",
  );
}

/**
 * RuntimeCore.retryEventLater: an event that exists only in memory (a task's report: nothing sends it again) whose
 * wake failed goes back to its agent after the backoff of its `tries`-th try, not at once: the same failure would
 * repeat in the same drain. Held here until then, so a shutdown meanwhile fails it (its task's row stays for
 * onTaskInterrupted at the next start). A report of a task that already has reports held joins them, behind them and
 * under their timer: reports of one task reach the agent in the order the task made them (see holdBehindReports).
 */
export function retryEventLater(rt: Runtime, agentId: string, item: QueuedEvent, tries: number): void {
  if (rt.closing || rt.closed) {
    item.resolve({ status: "failed", code: AGENT_ERRORS.RUNTIME_CLOSED, message: "runtime is shutting down" });
    return;
  }
  const taskId = taskOf(item);
  const line = taskId === undefined ? undefined : heldLineOf(rt, agentId, taskId);
  if (line !== undefined) {
    line.items.push(item);
    return;
  }
  // Not before an onStart backoff of the agent ends (start-backoff.ts): its wake would be refused, and this event (the
  // retired instance's handover among them) is what wakes the agent for the next try then.
  const delayMs = Math.max(eventRetryDelayMs(tries), rt.core.startBackoff.remainingMs(agentId));
  const timer = rt.core.clock.setTimeout(() => {
    const held = rt.eventRetries.get(timer);
    rt.eventRetries.delete(timer);
    if (held === undefined) return;
    // The task's reports still waiting in the mailbox (the agent was busy, so no drain took them to join the line)
    // go behind the held ones: rerouted to the mailbox's end, the held ones would otherwise run after them.
    const waiting = held.taskId === undefined ? [] : takeWaitingReports(rt, agentId, held.taskId);
    // In order, in one turn: they reach the mailbox together and run in that order.
    for (const event of held.items) reroute(rt, agentId, event);
    for (const event of waiting) reroute(rt, agentId, event);
  }, delayMs);
  rt.eventRetries.set(timer, { agentId, taskId, items: [item] });
}

/**
 * RuntimeCore.holdBehindReports: `batch` (just taken from the agent's mailbox) less the task reports whose task has
 * reports held for a later try; those join the held ones, behind them. Without it, a report made after the held one
 * (the task's next progress, its outcome) ran first: the agent heard of progress out of order, or of the outcome
 * before progress, whose event then found the task's row gone and was dropped.
 */
export function holdBehindReports(rt: Runtime, agentId: string, batch: QueuedEvent[]): QueuedEvent[] {
  if (rt.eventRetries.size === 0) return batch;
  let kept: QueuedEvent[] | null = null;
  for (let i = 0; i < batch.length; i++) {
    const item = batch[i];
    const taskId = taskOf(item);
    const line = taskId === undefined ? undefined : heldLineOf(rt, agentId, taskId);
    if (line !== undefined) {
      kept ??= batch.slice(0, i);
      line.items.push(item);
    } else kept?.push(item);
  }
  return kept ?? batch;
}

/**
 * Takes the reports of `taskId` out of the mailbox of the agent's cell, in their order (the rest stay as they were).
 * Task reports are runtime events (never `user`), so the bounded part of the mailbox is not changed.
 */
function takeWaitingReports(rt: Runtime, agentId: string, taskId: string): QueuedEvent[] {
  const cell = rt.cells.get(agentId);
  if (cell === undefined || cell.closed) return [];
  const mailbox = cell.mailbox;
  if (!mailbox.some((item) => taskOf(item) === taskId)) return [];
  const taken: QueuedEvent[] = [];
  const kept: QueuedEvent[] = [];
  for (const item of mailbox) (taskOf(item) === taskId ? taken : kept).push(item);
  mailbox.splice(0, mailbox.length, ...kept);
  return taken;
}

/** The task a report belongs to; undefined for any other event. */
function taskOf(item: QueuedEvent): string | undefined {
  const event = item.event;
  return event.kind === "task-progress" || event.kind === "task-done" || event.kind === "task-failed"
    ? event.taskId
    : undefined;
}

function heldLineOf(rt: Runtime, agentId: string, taskId: string): HeldEvents | undefined {
  for (const held of rt.eventRetries.values()) if (held.agentId === agentId && held.taskId === taskId) return held;
  return undefined;
}

/** RuntimeCore.heldEvents: the agent's events waiting for a later try (a wake's start leaves their tasks' rows). */
export function heldEvents(rt: Runtime, agentId: string): QueuedEvent[] {
  const held: QueuedEvent[] = [];
  if (rt.eventRetries.size === 0) return held;
  for (const r of rt.eventRetries.values()) if (r.agentId === agentId) held.push(...r.items);
  return held;
}

/**
 * The agent is destroyed (runtime-registry.ts, destroyFiles): its events waiting for a later try fail now. Left to
 * their timers, they went to a new cell of the agent and woke it, so a destroyed agent was made again (its database,
 * its runtime.db rows) and a device provisioned again under the same id heard of a task of the old one.
 */
export function dropHeldEvents(rt: Runtime, agentId: string): void {
  failHeldEvents(rt, AGENT_ERRORS.AGENT_DESTROYED, "agent destroyed", agentId);
}

/** Shutdown: the events waiting for a later try fail now (their timers would outlive the runtime). */
export function failEventRetries(rt: Runtime): void {
  failHeldEvents(rt, AGENT_ERRORS.RUNTIME_CLOSED, "runtime is shutting down");
}

/** Clears the timers of the events waiting for a later try (only `agentId`'s, when given) and fails those events. */
function failHeldEvents(rt: Runtime, code: string, message: string, agentId?: string): void {
  if (rt.eventRetries.size === 0) return;
  for (const [timer, held] of rt.eventRetries) {
    if (agentId !== undefined && held.agentId !== agentId) continue;
    rt.core.clock.clearTimeout(timer);
    rt.eventRetries.delete(timer);
    for (const item of held.items) item.resolve({ status: "failed", code, message });
  }
}
