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
    rt.alarmFailures.delete(agentId);
    return;
  }
  if (rt.closing || rt.closed) return;
  const failures = (rt.alarmFailures.get(agentId) ?? 0) + 1;
  rt.alarmFailures.set(agentId, failures);
  const delayMs = Math.min(ALARM_RETRY_MAX_MS, ALARM_RETRY_FIRST_MS * 2 ** (failures - 1));
  rt.alarms.lowerTo(agentId, rt.core.clock.now() + delayMs);
  rt.core.logger.warn(
    { agent: agentId, failures, retryInMs: delayMs, code: outcome.code },
    "alarm event failed; its alarm is set again later",
  );
}
