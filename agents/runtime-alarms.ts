import type { EventOutcome } from "./events/types.ts";
import type { Runtime } from "./runtime.ts";
import { enqueueInternal } from "./runtime-registry.ts";

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
    if (rt.alarmFailures.delete(agentId)) rt.alarms.clearBackoff(agentId);
    return;
  }
  setAlarmAgain(rt, agentId, outcome.code, "alarm");
}

/**
 * A queue flush (the event a commit that queued items asks for) settled. One that failed as a whole (the state it
 * left too large, a storage fault, an abandoned batch, a failed wake) left its items due with nothing to flush them:
 * the queue event is asked for only by a commit that queued something. The alarm event flushes the queue too, so the
 * agent's alarm is set again with the alarm's backoff, and its failures in a row count together with the alarm's (a
 * committed alarm event resets them; a committed flush leaves them to it).
 */
export function queueFlushSettled(rt: Runtime, agentId: string, outcome: EventOutcome): void {
  if (outcome.status === "failed") setAlarmAgain(rt, agentId, outcome.code, "queue");
}

/** The backoff for the agent's `failures`-th event failing as a whole in a row: 1 s doubling, up to 5 min. */
export function eventRetryDelayMs(failures: number): number {
  return Math.min(ALARM_RETRY_MAX_MS, ALARM_RETRY_FIRST_MS * 2 ** (failures - 1));
}

function setAlarmAgain(rt: Runtime, agentId: string, code: string, event: "alarm" | "queue"): void {
  if (rt.closing || rt.closed) return;
  const failures = (rt.alarmFailures.get(agentId) ?? 0) + 1;
  rt.alarmFailures.set(agentId, failures);
  const delayMs = eventRetryDelayMs(failures);
  rt.alarms.backOff(agentId, rt.core.clock.now() + delayMs);
  rt.core.logger.warn(
    { agent: agentId, event, failures, retryInMs: delayMs, code },
    "event failed as a whole; the agent's alarm is set again later",
  );
}
