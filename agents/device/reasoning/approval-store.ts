/**
 * Pending approvals: a tool call the model made that an operator must allow before it runs. Kept in the agent's
 * own table (the source of truth, which survives hibernation and restarts) and mirrored into the fleet directory
 * (kind "approval") so the operator API can list them without waking every agent.
 */
import type { ValueMap } from "../../../codecs/frames.ts";
import type { SqlTag } from "../sql.ts";
import { decodeValue, encodeValue } from "../values.ts";

/** Directory kind of pending approvals. */
export const APPROVAL_DIRECTORY_KIND = "approval";

/** `device_meta` key of the next approval number (see `ApprovalStore.nextId`). */
const NEXT_ID_KEY = "approval_next_id";

/** `cancelled`: the turn ended before anyone decided (the viewer that asked disconnected). */
export type ApprovalStatus = "pending" | "approved" | "rejected" | "expired" | "cancelled";

/** An approval as `listApprovals` returns it. Times are ms since the Unix epoch. */
export interface Approval {
  id: string;
  turnId: string;
  toolCallId: string;
  tool: string;
  /** The raw JSON arguments the model gave. */
  args: string;
  status: ApprovalStatus;
  reason: string | null;
  createdAt: number;
  resolvedAt: number | null;
}

interface ApprovalRow {
  id: string;
  turn_id: string;
  tool_call_id: string;
  tool: string;
  args: string;
  status: string;
  reason: string | null;
  created_at: number;
  resolved_at: number | null;
  schedule_id: string | null;
}

function toApproval(row: ApprovalRow): Approval {
  return {
    id: row.id,
    turnId: row.turn_id,
    toolCallId: row.tool_call_id,
    tool: row.tool,
    args: row.args,
    status: row.status as ApprovalStatus,
    reason: row.reason,
    createdAt: Number(row.created_at),
    resolvedAt: row.resolved_at === null ? null : Number(row.resolved_at),
  };
}

/** The approval as a plain value (for rpc results and the directory). */
export function approvalValue(approval: Approval, extra: ValueMap = {}): ValueMap {
  return { ...approval, ...extra } as unknown as ValueMap;
}

/** Reads and writes the approvals table. */
export class ApprovalStore {
  constructor(
    private readonly sql: SqlTag,
    private readonly now: () => number,
  ) {}

  create(input: { id: string; turnId: string; toolCallId: string; tool: string; args: string }): Approval {
    this.sql`INSERT INTO approvals (id, turn_id, tool_call_id, tool, args, status, created_at)
      VALUES (${input.id}, ${input.turnId}, ${input.toolCallId}, ${input.tool}, ${input.args}, 'pending', ${this.now()})`;
    return this.get(input.id)!;
  }

  setSchedule(id: string, scheduleId: string): void {
    this.sql`UPDATE approvals SET schedule_id = ${scheduleId} WHERE id = ${id}`;
  }

  scheduleOf(id: string): string | null {
    return (
      this.sql<{ schedule_id: string | null }>`SELECT schedule_id FROM approvals WHERE id = ${id}`[0]?.schedule_id ??
      null
    );
  }

  get(id: string): Approval | undefined {
    const rows = this.sql<ApprovalRow>`SELECT * FROM approvals WHERE id = ${id}`;
    return rows.length > 0 ? toApproval(rows[0]) : undefined;
  }

  /** Newest first; only one status when given. */
  list(status?: ApprovalStatus, limit = 100): Approval[] {
    const n = Math.max(0, Math.min(limit, 1000));
    const rows =
      status === undefined
        ? this.sql<ApprovalRow>`SELECT * FROM approvals ORDER BY created_at DESC, rowid DESC LIMIT ${n}`
        : this
            .sql<ApprovalRow>`SELECT * FROM approvals WHERE status = ${status} ORDER BY created_at DESC, rowid DESC LIMIT ${n}`;
    return rows.map(toApproval);
  }

  /** Ids of the turn's pending approvals. */
  pendingIdsOfTurn(turnId: string): string[] {
    return this.sql<{ id: string }>`SELECT id FROM approvals WHERE turn_id = ${turnId} AND status = 'pending'`.map(
      (r) => r.id,
    );
  }

  pendingForTurn(turnId: string): number {
    return Number(
      this.sql<{ n: number }>`SELECT COUNT(*) AS n FROM approvals WHERE turn_id = ${turnId} AND status = 'pending'`[0]
        .n,
    );
  }

  /** Resolves a pending approval; false when it is not pending any more. */
  resolve(id: string, status: Exclude<ApprovalStatus, "pending">, reason: string | null): boolean {
    const rows = this.sql<{
      id: string;
    }>`UPDATE approvals SET status = ${status}, reason = ${reason}, resolved_at = ${this.now()}
      WHERE id = ${id} AND status = 'pending' RETURNING id`;
    return rows.length > 0;
  }

  /**
   * A sequential id, never given twice by this agent: resolved approvals are pruned with their turns, so the table's
   * largest id can go back; the next number is kept in `device_meta` as well (approvals are rare, the write is cheap).
   * An operator's stale or retried decision on a pruned approval then finds nothing instead of a later action.
   */
  nextId(): string {
    const newest = Number(
      this.sql<{ n: number }>`SELECT COALESCE(MAX(CAST(substr(id, 4) AS INTEGER)), 0) + 1 AS n FROM approvals`[0].n,
    );
    const meta = this.sql<{ value: Uint8Array | null }>`SELECT value FROM device_meta WHERE key = ${NEXT_ID_KEY}`;
    const stored = meta.length > 0 ? decodeValue(meta[0].value) : null;
    const n = Math.max(newest, typeof stored === "number" ? stored : 1);
    this.sql`INSERT INTO device_meta (key, value) VALUES (${NEXT_ID_KEY}, ${encodeValue(n + 1)})
      ON CONFLICT (key) DO UPDATE SET value = excluded.value`;
    return `ap-${n}`;
  }
}
