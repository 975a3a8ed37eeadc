/**
 * The persistent command outbox: QUEUED -> SENT -> SUCCEEDED / FAILED / EXPIRED. Commands are delivered in `seq`
 * order, redelivered after a reconnect until acknowledged, counted against `max_attempts`, and expired at their TTL.
 * Flow control: only the oldest open commands, as many as the window allows, are delivered; the rest stay QUEUED
 * until one of those finishes. Commands go SENT in `seq` order, so the open ones are the SENT ones, then the QUEUED.
 * A SENT command not acknowledged within its ack timeout after its latest delivery is delivered again (ack-timeout.ts).
 * The store only changes rows and says what to send; the agent sends the frames (after commit) and owns schedules.
 */
import type { CommandFrame, Value } from "../../codecs/frames.ts";
import type { SqlTag } from "./sql.ts";
import { checkFieldDepth, checkFieldEncodable } from "./value-depth.ts";
import { decodeValue, encodeValue } from "./values.ts";

export type CommandState = "QUEUED" | "SENT" | "SUCCEEDED" | "FAILED" | "EXPIRED";
export const COMMAND_STATES: readonly CommandState[] = ["QUEUED", "SENT", "SUCCEEDED", "FAILED", "EXPIRED"];

/** A command as `getCommand` / `listCommands` return it. Times are ms since the Unix epoch. */
export interface CommandRecord {
  id: string;
  seq: number;
  name: string;
  args: Value;
  state: CommandState;
  attempts: number;
  maxAttempts: number;
  /** How long after a delivery without an ack it is delivered again while the device is online, ms; 0: never. */
  ackTimeoutMs: number;
  createdAt: number;
  expiresAt: number;
  sentAt: number | null;
  doneAt: number | null;
  result: Value;
  error: string | null;
}

interface CommandRow {
  id: string;
  seq: number;
  name: string;
  args: Uint8Array | null;
  state: string;
  attempts: number;
  max_attempts: number;
  created_at: number;
  expires_at: number;
  sent_at: number | null;
  done_at: number | null;
  result: Uint8Array | null;
  error: string | null;
  schedule_id: string | null;
  /** The device sessions (connection ids) that got the latest delivery, and still open ones that got an earlier. */
  sent_sessions: Uint8Array | null;
  /** Null for a command stored before commands had their own (schema.ts, migration 13): the class's option holds. */
  ack_timeout_ms: number | null;
  /** The alarm of the latest delivery's ack timeout, while one is armed. */
  ack_schedule_id: string | null;
}

/** The alarms a command holds: its expiry at the TTL, and the ack timeout of its latest delivery. */
export interface CommandAlarms {
  ttl: string | null;
  ack: string | null;
}

function alarmsOf(row: CommandRow): CommandAlarms {
  return { ttl: row.schedule_id, ack: row.ack_schedule_id };
}

/** How the outbox arms ack timeouts: the agent owns the alarms, the outbox keeps their ids with the commands. */
export interface AckTimer {
  /** The class's `commandAckTimeoutMs`, for commands stored before they had their own. */
  defaultMs: number;
  /**
   * A command was delivered now: cancels its alarm `previous` (null: none) and, unless `timeoutMs` is 0, sets one
   * `timeoutMs` from now; the new alarm's id, or null.
   */
  rearm(commandId: string, timeoutMs: number, previous: string | null): string | null;
}

const NO_ACK_TIMER: AckTimer = { defaultMs: 0, rearm: () => null };

/** Outcome of an ack from the device. */
export type AckOutcome =
  | { status: "applied"; command: CommandRecord; alarms: CommandAlarms }
  /** A repeated ack for a finished command: ignored (dedup by id). */
  | { status: "duplicate"; command: CommandRecord }
  | { status: "unknown" };

function ackTimeoutOf(row: CommandRow, defaultMs: number): number {
  return row.ack_timeout_ms === null ? defaultMs : Number(row.ack_timeout_ms);
}

function toRecord(row: CommandRow, defaultAckTimeoutMs: number): CommandRecord {
  return {
    id: row.id,
    seq: Number(row.seq),
    name: row.name,
    args: decodeValue(row.args),
    state: row.state as CommandState,
    attempts: Number(row.attempts),
    maxAttempts: Number(row.max_attempts),
    ackTimeoutMs: ackTimeoutOf(row, defaultAckTimeoutMs),
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    sentAt: row.sent_at === null ? null : Number(row.sent_at),
    doneAt: row.done_at === null ? null : Number(row.done_at),
    result: decodeValue(row.result),
    error: row.error,
  };
}

/** The command frame for a record. */
export function commandFrame(command: CommandRecord): CommandFrame {
  const frame: CommandFrame = { id: command.id, n: command.name, exp: command.expiresAt };
  if (command.args !== null) frame.a = command.args;
  return frame;
}

/** Where a command can go now: the sessions its frame fits, or why it fits none of them. */
export type CommandRoute = { to: readonly string[] } | { refused: string };

/** The sessions a command was delivered to (none for a row written before they were recorded). */
function sentSessions(row: CommandRow): string[] {
  const value = row.state === "SENT" ? decodeValue(row.sent_sessions) : null;
  return Array.isArray(value) ? value.filter((id): id is string => typeof id === "string") : [];
}

/** Told of each state change the outbox makes (`from` null for a new command); a redelivery is no change. */
export type CommandTransitionListener = (commandId: string, from: CommandState | null, to: CommandState) => void;

/** Reads and writes the commands table. */
export class CommandOutbox {
  /** How many commands are open (QUEUED or SENT): counted once, then kept as rows change; undefined until read. */
  #open: number | undefined;

  constructor(
    private readonly sql: SqlTag,
    private readonly now: () => number,
    private readonly onTransition: CommandTransitionListener = () => {},
    private readonly ackTimer: AckTimer = NO_ACK_TIMER,
  ) {}

  #toRecord(row: CommandRow): CommandRecord {
    return toRecord(row, this.ackTimer.defaultMs);
  }

  /**
   * Adds a QUEUED command with the next sequence number. Throws BRIDGE_ERR_INVALID_ARGUMENT (field `args`) for args
   * nested deeper than a `down/cmd` frame allows or holding what no codec can write.
   */
  add(input: {
    id: string;
    name: string;
    args: Value;
    ttlSeconds: number;
    maxAttempts: number;
    /** Left out: the class's, as for a command stored before commands had their own. */
    ackTimeoutMs?: number;
  }): CommandRecord {
    checkFieldDepth(input.args, "args");
    checkFieldEncodable(input.args, "args");
    const now = this.now();
    const seq = Number(this.sql<{ s: number }>`SELECT COALESCE(MAX(seq), 0) + 1 AS s FROM commands`[0].s);
    this.sql`INSERT INTO commands
        (id, seq, name, args, state, attempts, max_attempts, created_at, expires_at, ack_timeout_ms)
      VALUES (${input.id}, ${seq}, ${input.name}, ${input.args === null ? null : encodeValue(input.args)}, 'QUEUED', 0,
        ${input.maxAttempts}, ${now}, ${now + input.ttlSeconds * 1000}, ${input.ackTimeoutMs ?? null})`;
    if (this.#open !== undefined) this.#open += 1;
    this.onTransition(input.id, null, "QUEUED");
    return this.get(input.id)!;
  }

  setSchedule(id: string, scheduleId: string): void {
    this.sql`UPDATE commands SET schedule_id = ${scheduleId} WHERE id = ${id}`;
  }

  get(id: string): CommandRecord | undefined {
    const rows = this.sql<CommandRow>`SELECT * FROM commands WHERE id = ${id}`;
    return rows.length > 0 ? this.#toRecord(rows[0]) : undefined;
  }

  /** Newest first. */
  list(filter: { state?: CommandState; limit?: number } = {}): CommandRecord[] {
    const limit = Math.max(0, Math.min(filter.limit ?? 100, 1000));
    const rows =
      filter.state === undefined
        ? this.sql<CommandRow>`SELECT * FROM commands ORDER BY seq DESC LIMIT ${limit}`
        : this.sql<CommandRow>`SELECT * FROM commands WHERE state = ${filter.state} ORDER BY seq DESC LIMIT ${limit}`;
    return rows.map((row) => this.#toRecord(row));
  }

  /**
   * How many commands are open (QUEUED or SENT). One indexed count per agent wake (and after a rollback), then kept
   * in memory: the agent asks after every ack, and most acks leave nothing waiting for the place freed.
   */
  openCount(): number {
    this.#open ??= Number(
      this.sql<{ n: number }>`SELECT COUNT(*) AS n FROM commands WHERE state IN ('QUEUED', 'SENT')`[0].n,
    );
    return this.#open;
  }

  /** Forgets the open count: the event's writes were rolled back. */
  invalidate(): void {
    this.#open = undefined;
  }

  /**
   * Marks the open commands (QUEUED, or SENT but unacknowledged) within the window as sent once more, in order, and
   * says what to deliver to which of the device's sessions `sessions` (connection ids). The window is the
   * `maxInFlight` oldest open commands (unbounded when not given): the ones beyond it stay as they are, so at most
   * that many are SENT at a time, and a command that ends here frees its place for the next. Commands past their
   * expiry become EXPIRED; those out of attempts become FAILED. `onlyQueued` delivers just the QUEUED ones (a new
   * command while the device is online must not resend the SENT ones; they still hold their places). A SENT command
   * already delivered to every one of `sessions` is left as it is: a session gets each command once (a command sent
   * after a session connected and before it greeted must not go again with the greeting); the next session gets it
   * again. `route` picks the sessions a command can go to now among those that do not have it yet, or says why it
   * cannot go to any (its frame is too large for the device): such a command becomes FAILED with that reason rather
   * than SENT. `openSessions` are the device's open sessions: the sessions remembered per command are kept to those,
   * so the list never grows past the open sessions.
   */
  takeDeliveries(options: {
    onlyQueued: boolean;
    sessions: readonly string[];
    openSessions?: readonly string[];
    route?: (command: CommandRecord, sessions: readonly string[]) => CommandRoute;
    maxInFlight?: number;
  }): {
    deliver: Array<{ command: CommandRecord; to: readonly string[] }>;
    finished: Array<{ command: CommandRecord; alarms: CommandAlarms }>;
  } {
    const { onlyQueued, sessions } = options;
    const route = options.route ?? ((_command, pending) => ({ to: pending }));
    const open = new Set(options.openSessions ?? sessions);
    const now = this.now();
    const deliver: Array<{ command: CommandRecord; to: readonly string[] }> = [];
    const finished: Array<{ command: CommandRecord; alarms: CommandAlarms }> = [];
    let places = options.maxInFlight ?? Number.MAX_SAFE_INTEGER;
    let after = 0;
    // One read of the window on the common path; another only when commands in it ended and left places to fill.
    // INDEXED BY: without statistics SQLite reads every open row through (state, seq) and sorts them for the LIMIT,
    // where the index of open commands by seq (schema.ts, migration 12) reads just the window.
    while (places > 0) {
      const asked = places;
      const rows = this.sql<CommandRow>`SELECT * FROM commands INDEXED BY commands_open_seq
        WHERE state IN ('QUEUED', 'SENT') AND seq > ${after} ORDER BY seq ASC LIMIT ${asked}`;
      for (const row of rows) {
        after = Number(row.seq);
        const had = sentSessions(row);
        const pending = onlyQueued && row.state === "SENT" ? [] : sessions.filter((id) => !had.includes(id));
        // Every session it is meant for has it already: it holds its place, and nothing changes.
        if (Number(row.expires_at) > now && pending.length === 0) {
          places -= 1;
          continue;
        }
        const decided = this.decide(row, now, pending, route);
        if (decided.status === "ended") {
          this.finish(row, decided.state, null, decided.reason);
          finished.push({ command: this.get(row.id)!, alarms: alarmsOf(row) });
          continue;
        }
        places -= 1;
        deliver.push({ command: this.markSent(row, now, decided.to, had, open), to: decided.to });
      }
      if (rows.length < asked) break;
    }
    return { deliver, finished };
  }

  /**
   * The ack timeout of SENT command `id` elapsed (its alarm fired): delivers it once more to every one of `sessions`
   * (the device's open sessions), as a reconnect does, or ends it as a reconnect would (past its expiry, out of
   * attempts, too large for every session). Undefined, changing nothing, when it is no longer SENT, has no ack
   * timeout, its latest delivery is more recent than that (an alarm left over, or a call ahead of time), or it is
   * beyond the window of the `maxInFlight` oldest open commands (SENT before `commandMaxInFlight` was lowered): like
   * a reconnect, the timeout leaves such a command to the acks, and the delivery that lets it in arms a new one.
   */
  takeTimedOut(
    id: string,
    sessions: readonly string[],
    route: (command: CommandRecord, sessions: readonly string[]) => CommandRoute,
    maxInFlight = Number.MAX_SAFE_INTEGER,
  ):
    | { status: "deliver"; command: CommandRecord; to: readonly string[] }
    | { status: "ended"; command: CommandRecord; alarms: CommandAlarms }
    | undefined {
    const rows = this.sql<CommandRow>`SELECT * FROM commands WHERE id = ${id} AND state = 'SENT'`;
    if (rows.length === 0) return undefined;
    const row = rows[0];
    const now = this.now();
    const timeoutMs = ackTimeoutOf(row, this.ackTimer.defaultMs);
    if (timeoutMs === 0 || row.sent_at === null || Number(row.sent_at) + timeoutMs > now) return undefined;
    const older = Number(
      this.sql<{ n: number }>`SELECT COUNT(*) AS n FROM commands INDEXED BY commands_open_seq
        WHERE state IN ('QUEUED', 'SENT') AND seq < ${row.seq}`[0].n,
    );
    if (older >= maxInFlight) return undefined;
    const decided = this.decide(row, now, sessions, route);
    if (decided.status === "ended") {
      this.finish(row, decided.state, null, decided.reason);
      return { status: "ended", command: this.get(id)!, alarms: alarmsOf(row) };
    }
    const had = sentSessions(row);
    return { status: "deliver", command: this.markSent(row, now, decided.to, had, new Set(sessions)), to: decided.to };
  }

  /**
   * Records a delivery of `row` to `to` now (one more attempt) and re-arms its ack timeout. The sessions remembered
   * are the still open ones of `had` (those that got it before) and `to`.
   */
  private markSent(
    row: CommandRow,
    now: number,
    to: readonly string[],
    had: readonly string[],
    open: ReadonlySet<string>,
  ): CommandRecord {
    const remembered = encodeValue([...had.filter((id) => open.has(id) && !to.includes(id)), ...to]);
    const ackAlarm = this.ackTimer.rearm(row.id, ackTimeoutOf(row, this.ackTimer.defaultMs), row.ack_schedule_id);
    this.sql`UPDATE commands SET state = 'SENT', attempts = attempts + 1, sent_at = ${now},
      sent_sessions = ${remembered}, ack_schedule_id = ${ackAlarm} WHERE id = ${row.id}`;
    if (row.state !== "SENT") this.onTransition(row.id, row.state as CommandState, "SENT");
    return this.get(row.id)!;
  }

  /** Whether an open command goes to `pending` now, and to which of them; or the final state it moves to, and why. */
  private decide(
    row: CommandRow,
    now: number,
    pending: readonly string[],
    route: (command: CommandRecord, sessions: readonly string[]) => CommandRoute,
  ): { status: "deliver"; to: readonly string[] } | { status: "ended"; state: "EXPIRED" | "FAILED"; reason: string } {
    if (Number(row.expires_at) <= now) {
      return { status: "ended", state: "EXPIRED", reason: "expired before delivery was acknowledged" };
    }
    if (Number(row.attempts) >= Number(row.max_attempts)) {
      return { status: "ended", state: "FAILED", reason: `no ack after ${row.attempts} deliveries` };
    }
    const routed = route(this.#toRecord(row), pending);
    return "refused" in routed
      ? { status: "ended", state: "FAILED", reason: routed.refused }
      : { status: "deliver", to: routed.to };
  }

  /** Applies the device's ack. Only an open command changes; a repeat is reported as a duplicate. */
  ack(id: string, ok: boolean, result: Value, error: string | null): AckOutcome {
    const rows = this.sql<CommandRow>`SELECT * FROM commands WHERE id = ${id}`;
    if (rows.length === 0) return { status: "unknown" };
    const row = rows[0];
    if (row.state !== "QUEUED" && row.state !== "SENT") return { status: "duplicate", command: this.#toRecord(row) };
    this.finish(row, ok ? "SUCCEEDED" : "FAILED", result, ok ? null : (error ?? "device reported failure"));
    return { status: "applied", command: this.get(id)!, alarms: alarmsOf(row) };
  }

  /** Expires `id` when it is still open (the TTL schedule fired). */
  expire(id: string): { command: CommandRecord; alarms: CommandAlarms } | undefined {
    const rows = this.sql<CommandRow>`SELECT * FROM commands WHERE id = ${id} AND state IN ('QUEUED', 'SENT')`;
    if (rows.length === 0) return undefined;
    this.finish(rows[0], "EXPIRED", null, "time to live elapsed before an ack");
    // The TTL alarm is the one running (a schedule may cancel itself): only the ack timeout's is left to cancel.
    return { command: this.get(id)!, alarms: { ttl: null, ack: rows[0].ack_schedule_id } };
  }

  /** Deletes the oldest finished commands beyond `keep`. */
  prune(keep: number): number {
    const boundary = this.sql<{ seq: number }>`SELECT seq FROM commands WHERE state NOT IN ('QUEUED', 'SENT')
      ORDER BY seq DESC LIMIT 1 OFFSET ${keep}`;
    if (boundary.length === 0) return 0;
    return this
      .sql`DELETE FROM commands WHERE state NOT IN ('QUEUED', 'SENT') AND seq <= ${boundary[0].seq} RETURNING 1 AS n`
      .length;
  }

  /** Moves an open command (QUEUED or SENT) to a final state. */
  private finish(row: CommandRow, state: CommandState, result: Value, error: string | null): void {
    const id = row.id;
    if (this.#open !== undefined) this.#open -= 1;
    this
      .sql`UPDATE commands SET state = ${state}, done_at = ${this.now()}, result = ${result === null ? null : encodeValue(result)},
      error = ${error} WHERE id = ${id}`;
    this.onTransition(id, row.state as CommandState, state);
  }
}
