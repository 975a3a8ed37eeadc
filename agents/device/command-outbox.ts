/**
 * The persistent command outbox: QUEUED -> SENT -> SUCCEEDED / FAILED / EXPIRED. Commands are delivered in `seq`
 * order, redelivered after a reconnect until acknowledged, counted against `max_attempts`, and expired at their TTL.
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

/** Told of each state change the outbox makes (`from` null for a new command); a redelivery is no change. */
export type CommandTransitionListener = (commandId: string, from: CommandState | null, to: CommandState) => void;

/** Reads and writes the commands table. */
export class CommandOutbox {
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
   * Marks every open command (QUEUED, or SENT but unacknowledged) as sent once more, in order, and returns what to
   * deliver. Commands past their expiry become EXPIRED; those out of attempts become FAILED. `onlyQueued` delivers
   * just the QUEUED ones (a new command while the device is online must not resend the SENT ones). `refusal` says
   * why a command cannot be delivered at all (its frame is too large for the device), or null; such a command
   * becomes FAILED with that reason rather than SENT.
   */
  takeDeliveries(
    onlyQueued: boolean,
    refusal: (command: CommandRecord) => string | null = () => null,
  ): {
    deliver: CommandRecord[];
    finished: Array<{ command: CommandRecord; scheduleId: string | null }>;
  } {
    const now = this.now();
    const rows = onlyQueued
      ? this.sql<CommandRow>`SELECT * FROM commands WHERE state = 'QUEUED' ORDER BY seq ASC`
      : this.sql<CommandRow>`SELECT * FROM commands WHERE state IN ('QUEUED', 'SENT') ORDER BY seq ASC`;
    const deliver: CommandRecord[] = [];
    const finished: Array<{ command: CommandRecord; scheduleId: string | null }> = [];
    for (const row of rows) {
      const ended = this.undeliverable(row, now, refusal);
      if (ended !== null) {
        this.finish(row, ended.state, null, ended.reason);
        finished.push({ command: this.get(row.id)!, scheduleId: row.schedule_id });
        continue;
      }
      this.sql`UPDATE commands SET state = 'SENT', attempts = attempts + 1, sent_at = ${now} WHERE id = ${row.id}`;
      if (row.state !== "SENT") this.onTransition(row.id, row.state as CommandState, "SENT");
      deliver.push(this.get(row.id)!);
    }
    return { deliver, finished };
  }

  /** The final state an open command moves to instead of being delivered now, and why; null to deliver it. */
  private undeliverable(
    row: CommandRow,
    now: number,
    refusal: (command: CommandRecord) => string | null,
  ): { state: "EXPIRED" | "FAILED"; reason: string } | null {
    if (Number(row.expires_at) <= now) return { state: "EXPIRED", reason: "expired before delivery was acknowledged" };
    if (Number(row.attempts) >= Number(row.max_attempts)) {
      return { state: "FAILED", reason: `no ack after ${row.attempts} deliveries` };
    }
    const refused = refusal(toRecord(row));
    return refused === null ? null : { state: "FAILED", reason: refused };
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
    this
      .sql`UPDATE commands SET state = ${state}, done_at = ${this.now()}, result = ${result === null ? null : encodeValue(result)},
      error = ${error} WHERE id = ${id}`;
    this.onTransition(id, row.state as CommandState, state);
  }
}
