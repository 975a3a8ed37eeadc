/**
 * A reasoning turn as the agent holds it (`Turn`), its statuses and origin, and its mapping from a `reason_turns` row.
 * Stored and read by turn-store.ts.
 */
import type { ChatUsage } from "../../engine.ts";

/**
 * `awaiting_approval`: a tool call of the turn waits for an operator. `queued`: nothing is pending any more and the
 * turn waits to run its next round (turn-queue.ts). Neither holds a slot (the device's `maxConcurrentTurns`, or the
 * viewers' `maxConcurrentViewerTurns`); a `running` one holds one of its origin's.
 */
export type TurnStatus = "running" | "awaiting_approval" | "queued" | "done" | "failed" | "cancelled" | "interrupted";

/**
 * Who asked a turn: the device itself, or a viewer (a WebSocket client). A viewer's turn answers that viewer only and
 * ends with its connection (viewer-turns.ts); a device's turn follows the device from session to session. Request ids
 * are scoped by it: the device's are its own whatever session asked, and each viewer connection has its own
 * (open-turns.ts).
 */
export type TurnOrigin = "device" | "viewer";

/** The origin a `reason_turns.origin` value names; anything else (none was stored before migration 8) the device's. */
export function turnOrigin(stored: string): TurnOrigin {
  return stored === "viewer" ? "viewer" : "device";
}

export interface Turn {
  id: string;
  requestId: string;
  /** The connection that asked. */
  connId: string;
  origin: TurnOrigin;
  question: string;
  /** The volatile device context snapshotted when the turn began (kept so every round shares one prefix). */
  context: string;
  /**
   * True once the engine refused a round of this turn as too long for its context window: its rounds are asked
   * without history from then on, and the history of later turns starts at it.
   */
  withoutHistory: boolean;
  /**
   * The finished turns its first round carried as history, by id in prompt order: every later round replays them,
   * so the prompt of one turn only grows. Undefined for turns stored before schema migration 10.
   */
  historyTurns?: string[];
  /**
   * The system message (system prompt and device profile) its first round sent: every later round sends it again, so
   * a hello that changed the profile meanwhile changes neither the prompt's prefix nor what the model reasoned on.
   * Undefined once the turn ended (no round reads it then) and for turns stored before schema migration 11.
   */
  systemMessage?: string;
  status: TurnStatus;
  stream: boolean;
  maxTokens: number;
  round: number;
  seq: number;
  text: string;
  taskId: string | null;
  usage: ChatUsage;
  finishReason: string | null;
  createdAt: number;
}

export interface TurnRow {
  id: string;
  request_id: string;
  conn_id: string;
  origin: string;
  question: string;
  context: string;
  without_history: number;
  history_turns: string | null;
  system_message: string | null;
  status: string;
  stream: number;
  max_tokens: number;
  round: number;
  seq: number;
  text: string;
  task_id: string | null;
  prompt_tokens: number;
  cached_tokens: number;
  completion_tokens: number;
  finish_reason: string | null;
  /** The order it finished in among the turns (schema migration 9); null while it has not ended. */
  finish_order: number | null;
  created_at: number;
}

/** The turn ids `history_turns` holds, or undefined when it holds none (a turn older than the column). */
function parseHistoryTurns(text: string | null): string[] | undefined {
  if (text === null) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) ? parsed.filter((id): id is string => typeof id === "string") : undefined;
  } catch {
    return undefined;
  }
}

export function toTurn(row: TurnRow): Turn {
  const turn: Turn = {
    id: row.id,
    requestId: row.request_id,
    connId: row.conn_id,
    origin: turnOrigin(row.origin),
    question: row.question,
    context: row.context,
    withoutHistory: Number(row.without_history) !== 0,
    status: row.status as TurnStatus,
    stream: Number(row.stream) !== 0,
    maxTokens: Number(row.max_tokens),
    round: Number(row.round),
    seq: Number(row.seq),
    text: row.text,
    taskId: row.task_id,
    usage: {
      promptTokens: Number(row.prompt_tokens),
      cachedTokens: Number(row.cached_tokens),
      completionTokens: Number(row.completion_tokens),
    },
    finishReason: row.finish_reason,
    createdAt: Number(row.created_at),
  };
  const historyTurns = parseHistoryTurns(row.history_turns);
  if (historyTurns !== undefined) turn.historyTurns = historyTurns;
  if (typeof row.system_message === "string") turn.systemMessage = row.system_message;
  return turn;
}
