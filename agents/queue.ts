import type { Value } from "../codecs/frames.ts";
import { BridgeError } from "../errors/bridge-error.ts";
import type { AgentCell } from "./cell.ts";
import { invokeCallback } from "./callback-timeout.ts";
import { AGENT_ERRORS } from "./errors.ts";
import { randomId } from "./ids.ts";
import { findPublicMethod } from "./invoke.ts";
import { resolveRetryOptions, retryAtMs, retryFromJson, retryToJson } from "./retry.ts";
import type { QueueItem, RetryOptions } from "./types.ts";
import { decodeValue, encodeValue } from "./value-codec.ts";

interface QueueRow {
  seq: number;
  id: string;
  method: string;
  payload: Uint8Array | null;
  attempts: number;
  created_at: number;
  retry: string | null;
  next_at: number;
}

function toItem(row: QueueRow): QueueItem {
  return {
    id: row.id,
    seq: row.seq,
    method: row.method,
    payload: decodeValue(row.payload),
    attempts: row.attempts,
    createdAt: row.created_at,
  };
}

/** Appends an item; it runs after the current event commits (and on wake, and after a restart). */
export function enqueueItem(cell: AgentCell, method: string, payload: Value, retry: RetryOptions | undefined): string {
  if (findPublicMethod(cell.liveAgent(), method) === undefined) {
    throw new BridgeError(
      AGENT_ERRORS.SCHEDULE_INVALID,
      `agent has no public method ${JSON.stringify(method)} to queue`,
      {
        field: "method",
      },
    );
  }
  const policy = resolveRetryOptions(retry);
  const bytes = encodeValue(payload);
  const id = randomId(cell.core.random);
  cell.write(() => {
    cell
      .sqlRunner()
      .run(
        "INSERT INTO _bridge_queue (id, method, payload, created_at, retry) VALUES (?, ?, ?, ?, ?)",
        id,
        method,
        bytes,
        cell.core.clock.now(),
        retryToJson(policy),
      );
    // Written ahead of the commit so a restart finds this agent (runtime.start wakes pending agents).
    cell.core.alarms.markPending(cell.id);
    cell.queueDirty = true;
  });
  return id;
}

export function getItem(cell: AgentCell, id: string): QueueItem | undefined {
  const row = cell.sqlRunner().get<QueueRow>("SELECT * FROM _bridge_queue WHERE id = ?", id);
  return row === undefined ? undefined : toItem(row);
}

export function removeItem(cell: AgentCell, id: string): boolean {
  return cell.write(() => cell.sqlRunner().run("DELETE FROM _bridge_queue WHERE id = ?", id).changes > 0);
}

export function listItems(cell: AgentCell): QueueItem[] {
  return cell.sqlRunner().all<QueueRow>("SELECT * FROM _bridge_queue ORDER BY seq").map(toItem);
}

/**
 * An item's due time: a first attempt is due from when it was queued (`next_at` 0), a retry at its `next_at`. An
 * alarm backoff holds the items due by its `heldThrough` (alarm-index.ts, backOff).
 */
const DUE = "MAX(next_at, created_at)";

/**
 * What an alarm backoff holds of the queue (alarm-index.ts, backOff): whether it holds any item (due by its
 * `heldThrough`), and the lowest sequence number among the first attempts it holds. First attempts run in strict
 * sequence order, so every item queued after that one waits behind it until the hold ends (a device's "command A then
 * B" never runs B first), even one queued after the failure; retries keep their own times.
 */
function heldPart(cell: AgentCell, heldThrough: number): { any: boolean; firstSeq: number | null } {
  const row = cell
    .sqlRunner()
    .get<{ n: number; first: number | null }>(
      `SELECT COUNT(*) AS n, MIN(CASE WHEN attempts = 0 THEN seq END) AS first FROM _bridge_queue WHERE ${DUE} <= ?`,
      heldThrough,
    );
  return { any: (row?.n ?? 0) > 0, firstSeq: row?.first ?? null };
}

/**
 * Earliest due time among the agent's queue items, or null. Items its alarm backoff holds (due when its event failed),
 * and every item after the first attempt it holds, count as due at the backoff's end; an earlier item due later (a
 * retry) counts at its own time.
 */
export function nextQueueTime(cell: AgentCell): number | null {
  const sql = cell.sqlRunner();
  const backoff = cell.core.alarms.backoffOf(cell.id);
  if (backoff === undefined) {
    return sql.get<{ t: number | null }>("SELECT MIN(next_at) AS t FROM _bridge_queue")?.t ?? null;
  }
  const held = heldPart(cell, backoff.heldThrough);
  const later =
    sql.get<{ t: number | null }>(
      `SELECT MIN(${DUE}) AS t FROM _bridge_queue WHERE ${DUE} > ? AND seq < ?`,
      backoff.heldThrough,
      held.firstSeq ?? Number.MAX_SAFE_INTEGER,
    )?.t ?? null;
  return held.any && (later === null || backoff.until < later) ? backoff.until : later;
}

export function hasQueueItems(cell: AgentCell): boolean {
  return cell.sqlRunner().get("SELECT 1 FROM _bridge_queue LIMIT 1") !== undefined;
}

/**
 * Runs due items in sequence order, each in its own savepoint. A failing item is deleted on success only; on failure
 * it gets a later `next_at` (backoff) and the flush moves on, so one poison item never blocks the rest; after its last
 * attempt it goes to onError and is removed. First attempts are strictly FIFO; retries run when their time comes.
 * Items an alarm backoff holds wait for its end, and so do the items queued after the first of them (see heldPart),
 * so first attempts keep their order across a backoff too.
 * An item whose method does not settle within callbackTimeoutMs fails the same way and retires the agent instance
 * (callback-timeout.ts): the items after it run on the next instance, which the alarm index wakes at once.
 */
export async function flushQueue(cell: AgentCell): Promise<void> {
  const sql = cell.sqlRunner();
  const now = cell.core.clock.now();
  // While the agent's alarm backoff is in force, the items that were due when its event failed wait for its end, and
  // so does every item after the first of them (see heldPart).
  const heldThrough = cell.core.alarms.heldThrough(cell.id, now);
  const rows =
    heldThrough === null
      ? sql.all<QueueRow>("SELECT * FROM _bridge_queue WHERE next_at <= ? ORDER BY seq", now)
      : sql.all<QueueRow>(
          `SELECT * FROM _bridge_queue WHERE next_at <= ? AND ${DUE} > ? AND seq < ? ORDER BY seq`,
          now,
          heldThrough,
          heldPart(cell, heldThrough).firstSeq ?? Number.MAX_SAFE_INTEGER,
        );
  for (const row of rows) {
    if (cell.retired !== null) break;
    if (sql.get("SELECT 1 FROM _bridge_queue WHERE seq = ?", row.seq) === undefined) continue; // dequeued meanwhile
    const item = toItem(row);
    try {
      await cell.nestedAsync(async () => invokeCallback(cell, "queue", row.method, [item.payload, item]));
      sql.run("DELETE FROM _bridge_queue WHERE seq = ?", row.seq);
    } catch (err) {
      const policy = retryFromJson(row.retry);
      const attempts = row.attempts + 1;
      if (attempts < policy.maxAttempts) {
        // A wall time, unlike the runtime's in-memory backoffs: the row keeps it across restarts (see schedules.ts).
        const nextAt = retryAtMs(policy, attempts, cell.core.clock.now(), cell.core.random);
        sql.run("UPDATE _bridge_queue SET attempts = ?, next_at = ? WHERE seq = ?", attempts, nextAt, row.seq);
        cell.alarmDirty = true;
      } else {
        sql.run("DELETE FROM _bridge_queue WHERE seq = ?", row.seq);
        cell.reportError(err, `queue:${row.method}`);
      }
    }
  }
}
