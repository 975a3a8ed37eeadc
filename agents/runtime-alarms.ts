import { AGENT_ERRORS } from "./errors.ts";
import type { EventOutcome, QueuedEvent } from "./events/types.ts";
import type { Runtime } from "./runtime.ts";
import { enqueueInternal, reroute } from "./runtime-registry.ts";

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
 * committed alarm event resets them; a committed flush leaves them to it; an alarm that goes away ends them).
 */
export function queueFlushSettled(rt: Runtime, agentId: string, outcome: EventOutcome): void {
  if (outcome.status === "failed") setAlarmAgain(rt, agentId, outcome.code, "queue");
}

/** The backoff for the agent's `failures`-th event failing as a whole in a row: 1 s doubling, up to 5 min. */
export function eventRetryDelayMs(failures: number): number {
  return Math.min(ALARM_RETRY_MAX_MS, ALARM_RETRY_FIRST_MS * 2 ** (failures - 1));
}

function setAlarmAgain(rt: Runtime, agentId: string, code: string, event: "alarm" | "queue"): void {
  // Dropped, not failed: the agent was destroyed (its mailbox failed "agent destroyed") or the runtime is closing
  // (start() wakes agents with pending work again). Setting the alarm would write a row for a destroyed agent.
  if (rt.closing || rt.closed || code === AGENT_ERRORS.RUNTIME_CLOSED) return;
  const { failures, delayMs } = rt.alarms.backOff(agentId, eventRetryDelayMs);
  rt.core.logger.warn(
    { agent: agentId, event, failures, retryInMs: delayMs, code },
    "event failed as a whole; the agent's alarm is set again later",
  );
}

/**
 * RuntimeCore.retryEventLater: an event that exists only in memory (a task's report: nothing sends it again) whose
 * wake failed goes back to its agent after the backoff of its `tries`-th try, not at once: the same failure would repeat in the same drain.
 * Held here until then, so a shutdown meanwhile fails it (its task's row stays for onTaskInterrupted at the next start).
 */
export function retryEventLater(rt: Runtime, agentId: string, item: QueuedEvent, tries: number): void {
  if (rt.closing || rt.closed) {
    item.resolve({ status: "failed", code: AGENT_ERRORS.RUNTIME_CLOSED, message: "runtime is shutting down" });
    return;
  }
  const timer = rt.core.clock.setTimeout(() => {
    rt.eventRetries.delete(timer);
    reroute(rt, agentId, item);
  }, eventRetryDelayMs(tries));
  rt.eventRetries.set(timer, { agentId, item });
}

/** RuntimeCore.heldEvents: the agent's events waiting for a later try (a wake's start leaves their tasks' rows). */
export function heldEvents(rt: Runtime, agentId: string): QueuedEvent[] {
  const held: QueuedEvent[] = [];
  if (rt.eventRetries.size === 0) return held;
  for (const r of rt.eventRetries.values()) if (r.agentId === agentId) held.push(r.item);
  return held;
}

/**
 * The agent is destroyed (runtime-registry.ts, destroyFiles): its events waiting for a later try fail now. Left to
 * their timers, they went to a new cell of the agent and woke it, so a destroyed agent was made again (its database,
 * its runtime.db rows) and a device provisioned again under the same id heard of a task of the old one.
 */
export function dropHeldEvents(rt: Runtime, agentId: string): void {
  failHeldEvents(rt, "agent destroyed", agentId);
}

/** Shutdown: the events waiting for a later try fail now (their timers would outlive the runtime). */
export function failEventRetries(rt: Runtime): void {
  failHeldEvents(rt, "runtime is shutting down");
}

/** Clears the timers of the events waiting for a later try (only `agentId`'s, when given) and fails those events. */
function failHeldEvents(rt: Runtime, message: string, agentId?: string): void {
  if (rt.eventRetries.size === 0) return;
  for (const [timer, held] of rt.eventRetries) {
    if (agentId !== undefined && held.agentId !== agentId) continue;
    rt.core.clock.clearTimeout(timer);
    rt.eventRetries.delete(timer);
    held.item.resolve({ status: "failed", code: AGENT_ERRORS.RUNTIME_CLOSED, message });
  }
}
