import { Cron } from "croner";
import type { Value } from "../codecs/frames.ts";
import { BridgeError } from "../errors/bridge-error.ts";
import type { AgentCell } from "./cell.ts";
import { invokeCallback } from "./callback-timeout.ts";
import { AGENT_ERRORS } from "./errors.ts";
import { randomId } from "./ids.ts";
import { findPublicMethod } from "./invoke.ts";
import { resolveRetryOptions, retryAtMs, retryFromJson, retryToJson } from "./retry.ts";
import type { RetryOptions, Schedule, ScheduleType } from "./types.ts";
import { decodeValue, encodeValue } from "./value-codec.ts";

interface ScheduleRow {
  id: string;
  method: string;
  payload: Uint8Array | null;
  type: string;
  time: number;
  cron: string | null;
  interval_s: number | null;
  retry: string | null;
  attempts: number;
}

function invalid(message: string, field: string): BridgeError {
  return new BridgeError(AGENT_ERRORS.SCHEDULE_INVALID, message, { field });
}

function toSchedule(row: ScheduleRow): Schedule {
  const s: Schedule = {
    id: row.id,
    method: row.method,
    payload: decodeValue(row.payload),
    type: row.type as ScheduleType,
    time: row.time,
  };
  if (row.cron !== null) s.cron = row.cron;
  if (row.interval_s !== null) s.intervalSeconds = row.interval_s;
  return s;
}

/**
 * Next run of a cron expression strictly after `afterMs`, null when there is none (a year gone); croner parses it, in
 * UTC: 5 fields, 6 with seconds first, 7 with a year last, or a nickname (`@daily`).
 */
export function nextCronTime(expression: string, afterMs: number): number | null {
  const next = new Cron(expression, { paused: true, timezone: "Etc/UTC" }).nextRun(new Date(afterMs));
  return next === null ? null : next.getTime();
}

function checkMethod(cell: AgentCell, method: string): void {
  if (findPublicMethod(cell.liveAgent(), method) === undefined) {
    throw invalid(`agent has no public method ${JSON.stringify(method)} to schedule`, "method");
  }
}

function insert(cell: AgentCell, s: Schedule, retry: RetryOptions | undefined): Schedule {
  const policy = resolveRetryOptions(retry);
  const payload = encodeValue(s.payload);
  cell.write(() => {
    // Written ahead of the INSERT, not after it: a refused row must throw before the schedule is in the transaction,
    // or a handler that catches the refusal would commit a schedule whose row never reached runtime.db, and a crash
    // before the row's retry (alarm-index.ts) would leave it to wait for some other event. The index may wake an agent
    // early (harmless: an INSERT that fails leaves an early alarm), never late.
    cell.core.alarms.lowerTo(cell.id, s.time);
    cell
      .sqlRunner()
      .run(
        "INSERT INTO _bridge_schedules (id, method, payload, type, time, cron, interval_s, retry) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        s.id,
        s.method,
        payload,
        s.type,
        s.time,
        s.cron ?? null,
        s.intervalSeconds ?? null,
        retryToJson(policy),
      );
    cell.alarmDirty = true;
  });
  return s;
}

/** `schedule(when, ...)`: a Date (scheduled), a delay in seconds (delayed) or a cron expression (cron). */
export function createSchedule(
  cell: AgentCell,
  when: Date | number | string,
  method: string,
  payload: Value,
  retry: RetryOptions | undefined,
): Schedule {
  checkMethod(cell, method);
  const now = cell.core.clock.now();
  const id = randomId(cell.core.random);
  if (when instanceof Date) {
    const time = when.getTime();
    if (!Number.isFinite(time)) throw invalid("schedule date is invalid", "when");
    return insert(cell, { id, method, payload, type: "scheduled", time }, retry);
  }
  if (typeof when === "number") {
    if (!Number.isFinite(when) || when < 0) throw invalid("delay must be a number of seconds >= 0", "when");
    return insert(cell, { id, method, payload, type: "delayed", time: now + Math.round(when * 1000) }, retry);
  }
  if (typeof when === "string") {
    let time: number | null;
    try {
      time = nextCronTime(when, now);
    } catch (err) {
      throw new BridgeError(
        AGENT_ERRORS.SCHEDULE_INVALID,
        `invalid cron expression: ${when}`,
        { field: "when" },
        { cause: err },
      );
    }
    if (time === null) throw invalid(`cron expression never fires: ${when}`, "when");
    return insert(cell, { id, method, payload, type: "cron", time, cron: when }, retry);
  }
  throw invalid("when must be a Date, a delay in seconds or a cron string", "when");
}

/** `scheduleEvery(seconds, ...)`: first run one interval from now. */
export function createInterval(
  cell: AgentCell,
  intervalSeconds: number,
  method: string,
  payload: Value,
  retry: RetryOptions | undefined,
): Schedule {
  checkMethod(cell, method);
  const intervalMs = typeof intervalSeconds === "number" ? Math.round(intervalSeconds * 1000) : Number.NaN;
  // Times are whole milliseconds: an interval that rounds to 0 ms would re-arm at the moment it fired, forever.
  if (!Number.isFinite(intervalMs) || intervalMs < 1) {
    throw invalid("intervalSeconds must be a number >= 0.001 (one millisecond)", "intervalSeconds");
  }
  const time = cell.core.clock.now() + intervalMs;
  return insert(
    cell,
    { id: randomId(cell.core.random), method, payload, type: "interval", time, intervalSeconds },
    retry,
  );
}

export function cancelSchedule(cell: AgentCell, id: string): boolean {
  return cell.write(() => {
    const changes = cell.sqlRunner().run("DELETE FROM _bridge_schedules WHERE id = ?", id).changes;
    if (changes > 0) cell.alarmDirty = true;
    return changes > 0;
  });
}

export function getSchedule(cell: AgentCell, id: string): Schedule | undefined {
  const row = cell.sqlRunner().get<ScheduleRow>("SELECT * FROM _bridge_schedules WHERE id = ?", id);
  return row === undefined ? undefined : toSchedule(row);
}

export function listSchedules(
  cell: AgentCell,
  filter?: { type?: ScheduleType; timeRange?: { start?: Date; end?: Date } },
): Schedule[] {
  const start = filter?.timeRange?.start?.getTime() ?? Number.MIN_SAFE_INTEGER;
  const end = filter?.timeRange?.end?.getTime() ?? Number.MAX_SAFE_INTEGER;
  const rows = cell
    .sqlRunner()
    .all<ScheduleRow>("SELECT * FROM _bridge_schedules WHERE time >= ? AND time <= ? ORDER BY time, rowid", start, end);
  return rows.filter((r) => filter?.type === undefined || r.type === filter.type).map(toSchedule);
}

/**
 * When the agent's alarm is next due for its schedules, or null when it has none. Schedules its alarm backoff holds
 * (due when its event failed) count as due at the backoff's end; a later one counts at its own time, so a schedule
 * set during the backoff for before its end fires on time (alarm-index.ts, backOff).
 */
export function nextScheduleTime(cell: AgentCell): number | null {
  const sql = cell.sqlRunner();
  const backoff = cell.core.alarms.backoffOf(cell.id);
  if (backoff === undefined) {
    return sql.get<{ t: number | null }>("SELECT MIN(time) AS t FROM _bridge_schedules")?.t ?? null;
  }
  const held = sql.get("SELECT 1 FROM _bridge_schedules WHERE time <= ? LIMIT 1", backoff.heldThrough) !== undefined;
  const later =
    sql.get<{ t: number | null }>("SELECT MIN(time) AS t FROM _bridge_schedules WHERE time > ?", backoff.heldThrough)
      ?.t ?? null;
  return held && (later === null || backoff.until < later) ? backoff.until : later;
}

/**
 * Runs every due schedule (but those an alarm backoff holds, see nextScheduleTime), each in its own savepoint. The row is updated in the same transaction as the callback's
 * writes, so a crash before commit runs it again (at least once). A failure is retried with backoff by moving the
 * row's time, so retries never hold the mailbox; after the last attempt it goes to onError. A callback that does not
 * settle within callbackTimeoutMs fails the same way and retires the agent instance (callback-timeout.ts): the
 * schedules still due then run on the next instance, which the alarm index wakes at once.
 */
export async function runDueSchedules(cell: AgentCell): Promise<void> {
  const sql = cell.sqlRunner();
  const now = cell.core.clock.now();
  // While the agent's alarm backoff is in force, the schedules that were due when its event failed wait for its end.
  const heldThrough = cell.core.alarms.heldThrough(cell.id, now);
  // Ties in the order the schedules were set (rowid: SQLite gives each new row one above every row there is), not by
  // their random ids: three steps set for the same moment ("open", "dose", "close") ran in any order.
  const due =
    heldThrough === null
      ? sql.all<ScheduleRow>("SELECT * FROM _bridge_schedules WHERE time <= ? ORDER BY time, rowid", now)
      : sql.all<ScheduleRow>(
          "SELECT * FROM _bridge_schedules WHERE time <= ? AND time > ? ORDER BY time, rowid",
          now,
          heldThrough,
        );
  for (const listed of due) {
    if (cell.retired !== null) break;
    // Read again: an earlier callback of this run may have cancelled it (cancelSchedule said true, so it must not run).
    const row = sql.get<ScheduleRow>("SELECT * FROM _bridge_schedules WHERE id = ?", listed.id);
    if (row === undefined || row.time !== listed.time) continue;
    const schedule = toSchedule(row);
    let error: unknown = null;
    try {
      await cell.nestedAsync(async () => invokeCallback(cell, "schedule", row.method, [schedule.payload, schedule]));
    } catch (err) {
      error = err ?? new Error("schedule callback failed");
    }
    const current = sql.get<ScheduleRow>("SELECT * FROM _bridge_schedules WHERE id = ?", row.id);
    if (current === undefined || current.time !== row.time) continue; // the callback cancelled or moved it
    if (error !== null) {
      const policy = retryFromJson(current.retry);
      const attempts = current.attempts + 1;
      if (attempts < policy.maxAttempts) {
        // From the failure, not from the run's start: after a callback that took long to fail (a timeout), the
        // backoff would otherwise be over before it began, and the retry run again at once. A wall time, unlike the
        // runtime's in-memory backoffs: the row keeps it across restarts and the alarm index orders it among dates.
        const retryAt = retryAtMs(policy, attempts, cell.core.clock.now(), cell.core.random);
        sql.run("UPDATE _bridge_schedules SET attempts = ?, time = ? WHERE id = ?", attempts, retryAt, row.id);
        continue;
      }
      cell.reportError(error, `schedule:${row.method}`);
    }
    advance(cell, current, now);
  }
  cell.alarmDirty = true;
}

function advance(cell: AgentCell, row: ScheduleRow, now: number): void {
  const sql = cell.sqlRunner();
  let next: number | null = null;
  if (row.type === "interval" && row.interval_s !== null) {
    // From now, not from the missed time: a long sleep does not turn into a burst of catch-up runs.
    next = Math.max(row.time, now) + Math.round(row.interval_s * 1000);
  } else if (row.type === "cron" && row.cron !== null) {
    next = nextCronTime(row.cron, now);
  }
  if (next === null) sql.run("DELETE FROM _bridge_schedules WHERE id = ?", row.id);
  else sql.run("UPDATE _bridge_schedules SET attempts = 0, time = ? WHERE id = ?", next, row.id);
}
