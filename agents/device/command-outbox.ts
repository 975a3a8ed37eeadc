/**
 * The persistent command outbox: QUEUED -> SENT -> SUCCEEDED / FAILED / EXPIRED. Commands are delivered in `seq`
 * order, redelivered after a reconnect until acknowledged, counted against `max_attempts`, and expired at their TTL.
 * Flow control: only the oldest open commands, as many as the window allows, are delivered; the rest stay QUEUED
 * until one of those finishes. Commands go SENT in `seq` order, so the open ones are the SENT ones, then the QUEUED.
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
}

/** Outcome of an ack from the device. */
export type AckOutcome =
  | { status: "applied"; command: CommandRecord; scheduleId: string | null }
  /** A repeated ack for a finished command: ignored (dedup by id). */
  | { status: "duplicate"; command: CommandRecord }
  | { status: "unknown" };

function toRecord(row: CommandRow): CommandRecord {
  return {
    id: row.id,
    seq: Number(row.seq),
    name: row.name,
    args: decodeValue(row.args),
    state: row.state as CommandState,
    attempts: Number(row.attempts),
    maxAttempts: Number(row.max_attempts),
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
  ) {}

  /**
   * Adds a QUEUED command with the next sequence number. Throws BRIDGE_ERR_INVALID_ARGUMENT (field `args`) for args
   * nested deeper than a `down/cmd` frame allows or holding what no codec can write.
   */
  add(input: { id: string; name: string; args: Value; ttlSeconds: number; maxAttempts: number }): CommandRecord {
    checkFieldDepth(input.args, "args");
    checkFieldEncodable(input.args, "args");
    const now = this.now();
    const seq = Number(this.sql<{ s: number }>`SELECT COALESCE(MAX(seq), 0) + 1 AS s FROM commands`[0].s);
    this.sql`INSERT INTO commands (id, seq, name, args, state, attempts, max_attempts, created_at, expires_at)
      VALUES (${input.id}, ${seq}, ${input.name}, ${input.args === null ? null : encodeValue(input.args)}, 'QUEUED', 0,
        ${input.maxAttempts}, ${now}, ${now + input.ttlSeconds * 1000})`;
    if (this.#open !== undefined) this.#open += 1;
    this.onTransition(input.id, null, "QUEUED");
    return this.get(input.id)!;
  }

  setSchedule(id: string, scheduleId: string): void {
    this.sql`UPDATE commands SET schedule_id = ${scheduleId} WHERE id = ${id}`;
  }

  get(id: string): CommandRecord | undefined {
    const rows = this.sql<CommandRow>`SELECT * FROM commands WHERE id = ${id}`;
    return rows.length > 0 ? toRecord(rows[0]) : undefined;
  }

  /** Newest first. */
  list(filter: { state?: CommandState; limit?: number } = {}): CommandRecord[] {
    const limit = Math.max(0, Math.min(filter.limit ?? 100, 1000));
    const rows =
      filter.state === undefined
        ? this.sql<CommandRow>`SELECT * FROM commands ORDER BY seq DESC LIMIT ${limit}`
        : this.sql<CommandRow>`SELECT * FROM commands WHERE state = ${filter.state} ORDER BY seq DESC LIMIT ${limit}`;
    return rows.map(toRecord);
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
    finished: Array<{ command: CommandRecord; scheduleId: string | null }>;
  } {
    const { onlyQueued, sessions } = options;
    const route = options.route ?? ((_command, pending) => ({ to: pending }));
    const open = new Set(options.openSessions ?? sessions);
    const now = this.now();
    const deliver: Array<{ command: CommandRecord; to: readonly string[] }> = [];
    const finished: Array<{ command: CommandRecord; scheduleId: string | null }> = [];
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
          finished.push({ command: this.get(row.id)!, scheduleId: row.schedule_id });
          continue;
        }
        places -= 1;
        // Still open sessions that had it, and those it goes to now.
        const remembered = encodeValue([...had.filter((id) => open.has(id)), ...decided.to]);
        this.sql`UPDATE commands SET state = 'SENT', attempts = attempts + 1, sent_at = ${now},
          sent_sessions = ${remembered} WHERE id = ${row.id}`;
        if (row.state !== "SENT") this.onTransition(row.id, row.state as CommandState, "SENT");
        deliver.push({ command: this.get(row.id)!, to: decided.to });
      }
      if (rows.length < asked) break;
    }
    return { deliver, finished };
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
    const routed = route(toRecord(row), pending);
    return "refused" in routed
      ? { status: "ended", state: "FAILED", reason: routed.refused }
      : { status: "deliver", to: routed.to };
  }

  /** Applies the device's ack. Only an open command changes; a repeat is reported as a duplicate. */
  ack(id: string, ok: boolean, result: Value, error: string | null): AckOutcome {
    const rows = this.sql<CommandRow>`SELECT * FROM commands WHERE id = ${id}`;
    if (rows.length === 0) return { status: "unknown" };
    const row = rows[0];
    if (row.state !== "QUEUED" && row.state !== "SENT") return { status: "duplicate", command: toRecord(row) };
    this.finish(row, ok ? "SUCCEEDED" : "FAILED", result, ok ? null : (error ?? "device reported failure"));
    return { status: "applied", command: this.get(id)!, scheduleId: row.schedule_id };
  }

  /** Expires `id` when it is still open (the TTL schedule fired). */
  expire(id: string): CommandRecord | undefined {
    const rows = this.sql<CommandRow>`SELECT * FROM commands WHERE id = ${id} AND state IN ('QUEUED', 'SENT')`;
    if (rows.length === 0) return undefined;
    this.finish(rows[0], "EXPIRED", null, "time to live elapsed before an ack");
    return this.get(id);
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
