/**
 * The persisted conversation of a device: messages grouped by reasoning turn, with the row-size guard applied on
 * write. Prompts take history only from finished turns, so a turn waiting for an approval never leaves a dangling
 * tool call in another turn's prompt.
 */
import type { ChatMessage, ChatToolCall } from "../../engine.ts";
import type { SqlTag } from "../sql.ts";
import { compactText } from "./compact.ts";

/** A stored message as `getConversation` returns it. */
export interface ConversationEntry {
  id: number;
  turnId: string;
  role: ChatMessage["role"];
  content: string | null;
  toolCalls?: ChatToolCall[];
  toolCallId?: string;
  /** True when the row-size guard shortened it. */
  compacted: boolean;
  createdAt: number;
}

/** What a prompt reads of a message. */
export type PromptMessage = Pick<ConversationEntry, "role" | "content" | "toolCalls" | "toolCallId">;

/** A message with the row-size guard applied, not stored yet (`ConversationStore.prepare`). */
export type PreparedMessage = Omit<ConversationEntry, "id" | "createdAt">;

interface MessageRow {
  id: number;
  turn_id: string;
  role: string;
  content: string | null;
  tool_calls: string | null;
  tool_call_id: string | null;
  compacted: number;
  created_at: number;
}

function parseToolCalls(text: string | null): ChatToolCall[] | undefined {
  if (text === null) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (!Array.isArray(parsed)) return undefined;
    return parsed.filter(
      (c): c is ChatToolCall =>
        typeof c === "object" &&
        c !== null &&
        typeof c.id === "string" &&
        typeof c.name === "string" &&
        typeof c.arguments === "string",
    );
  } catch {
    return undefined;
  }
}

/**
 * Tool-call arguments as they can be sent back to an engine in later prompts: a JSON object. vLLM parses each replayed
 * call's arguments (json.loads) before its chat template runs and refuses the request when they are not JSON, so a
 * model's malformed call (cut by max_tokens, a stray quote) would fail every later round of its turn. The call ran with
 * what parseToolArgs made of them ("" as {}); any other text that is not an object is kept in a JSON note.
 */
function replayableArguments(text: string): string {
  if (text === "") return "{}";
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  if (typeof value === "object" && value !== null && !Array.isArray(value)) return text;
  return JSON.stringify({ invalidArguments: text });
}

function toEntry(row: MessageRow): ConversationEntry {
  const entry: ConversationEntry = {
    id: Number(row.id),
    turnId: row.turn_id,
    role: row.role as ChatMessage["role"],
    content: row.content,
    compacted: Number(row.compacted) !== 0,
    createdAt: Number(row.created_at),
  };
  const calls = parseToolCalls(row.tool_calls);
  if (calls !== undefined) entry.toolCalls = calls;
  if (row.tool_call_id !== null) entry.toolCallId = row.tool_call_id;
  return entry;
}

/**
 * Done turns whose finish order (reason_turns.finish_order) is above the returned base are in the history window,
 * `last` being the newest done turn's: all of them while there are at most `size`, then a window that jumps forward
 * in large steps and never holds more than `size` (a turn that failed takes a place too). A jump drops the oldest
 * turns, which shifts everything after the system message, so the engine recomputes the turns it keeps: each jump
 * keeps only a quarter of the window (at least one turn, for continuity) and the jumps are rare. Measured on the
 * fixed multi-turn workload (tests/agents/device-prefix-cache.test.ts): jumps of half the window held the
 * prefix-cache hit rate near 0.78; keeping a quarter brings it above 0.8.
 */
export function historyWindowBase(last: number, size: number): number {
  if (last <= size) return 0;
  // After a jump the window holds `keep` turns, then grows by one per turn up to `size`; the next turn jumps.
  const keep = Math.max(1, Math.floor(size / 4));
  const step = size - keep + 1;
  return size + 1 - keep + Math.floor((last - size - 1) / step) * step;
}

/**
 * The finish order (reason_turns.finish_order) of the newest turn that ended done, 0 when none: what places the
 * history window. Walks the finish_order index down from the newest finished turn and stops at the first done one.
 */
export function newestDoneFinishOrder(sql: SqlTag): number {
  const [row] = sql<{ n: number | null }>`SELECT finish_order AS n FROM reason_turns
    WHERE +status = 'done' ORDER BY finish_order DESC LIMIT 1`;
  return Number(row?.n ?? 0);
}

/** A finished turn of the history window: its messages and the context snapshot its question was asked with. */
export interface HistoryTurn {
  turnId: string;
  context: string;
  messages: ConversationEntry[];
  /** The newest telemetry row id its context snapshot saw; undefined for turns older than schema migration 3. */
  telemetryMark?: number;
}

/** A message row with what a history turn needs of its turn row. */
type HistoryRow = MessageRow & { turn_context: string; turn_mark: number | null };

/** The history turn a message row opens, with no messages yet. */
function toHistoryTurn(row: HistoryRow): HistoryTurn {
  const turn: HistoryTurn = { turnId: row.turn_id, context: row.turn_context, messages: [] };
  if (row.turn_mark !== null) turn.telemetryMark = Number(row.turn_mark);
  return turn;
}

/**
 * The newest telemetry row id the context snapshots of `history` saw, or undefined when none has one. A new turn's
 * context lists only rows stored after it: the older ones are already in the prompt.
 */
export function newestTelemetryMark(history: readonly HistoryTurn[]): number | undefined {
  let newest: number | undefined;
  for (const turn of history) {
    if (turn.telemetryMark !== undefined && (newest === undefined || turn.telemetryMark > newest))
      newest = turn.telemetryMark;
  }
  return newest;
}

/** Converts stored entries to engine messages. */
export function toChatMessages(entries: readonly PromptMessage[]): ChatMessage[] {
  return entries.map((e): ChatMessage => {
    switch (e.role) {
      case "assistant":
        return e.toolCalls && e.toolCalls.length > 0
          ? { role: "assistant", content: e.content, toolCalls: e.toolCalls }
          : { role: "assistant", content: e.content ?? "" };
      case "tool":
        return { role: "tool", toolCallId: e.toolCallId ?? "", content: e.content ?? "" };
      case "system":
        return { role: "system", content: e.content ?? "" };
      default:
        return { role: "user", content: e.content ?? "" };
    }
  });
}

/** Reads and writes the conversation table. */
export class ConversationStore {
  constructor(
    private readonly sql: SqlTag,
    private readonly now: () => number,
    private readonly maxMessageChars: number,
  ) {}

  /**
   * Appends a message, compacting oversized text and tool-call arguments (with a note) instead of failing. Returns
   * the entry as stored, so a prompt built right after needs no SELECT of it. `alreadyCompacted`: the caller cut the
   * text (a tool output, tool-output-budget.ts), so the row is marked as compacted whatever the guard does.
   */
  append(turnId: string, message: ChatMessage, alreadyCompacted = false): ConversationEntry {
    return this.store(this.prepare(turnId, message, alreadyCompacted));
  }

  /**
   * The message as `store` will write it, the row-size guard applied, nothing written yet: a prompt can be built
   * from `message` before the row exists (a question's engine request leaves before its event writes anything).
   */
  prepare(turnId: string, message: ChatMessage, alreadyCompacted = false): PreparedMessage {
    let compacted = alreadyCompacted;
    const guard = (text: string, what: string): string => {
      const result = compactText(text, this.maxMessageChars, what);
      compacted ||= result.compacted;
      return result.text;
    };
    let content: string | null = null;
    let toolCalls: ChatToolCall[] | undefined;
    let toolCallId: string | undefined;
    switch (message.role) {
      case "assistant": {
        content = message.content === null ? null : guard(message.content, "the assistant message");
        if (message.toolCalls && message.toolCalls.length > 0) {
          // Arguments cut in the middle are no longer JSON; replace them with a JSON note the model can read.
          toolCalls = message.toolCalls.map((call) => {
            const args = replayableArguments(call.arguments);
            if (args.length <= this.maxMessageChars)
              return args === call.arguments ? call : { ...call, arguments: args };
            compacted = true;
            const note = { compacted: `arguments of ${call.arguments.length} characters were cut` };
            return { ...call, arguments: JSON.stringify(note) };
          });
        }
        break;
      }
      case "tool":
        content = guard(message.content, "the tool output");
        toolCallId = message.toolCallId;
        break;
      default:
        content = guard(message.content, `the ${message.role} message`);
    }
    const prepared: PreparedMessage = { turnId, role: message.role, content, compacted };
    if (toolCalls !== undefined) prepared.toolCalls = toolCalls;
    if (toolCallId !== undefined) prepared.toolCallId = toolCallId;
    return prepared;
  }

  /** Writes a prepared message; returns the entry as stored. */
  store(message: PreparedMessage): ConversationEntry {
    const createdAt = this.now();
    const toolCalls = message.toolCalls === undefined ? null : JSON.stringify(message.toolCalls);
    const [row] = this.sql<{ id: number }>`INSERT INTO conversation
      (turn_id, role, content, tool_calls, tool_call_id, compacted, created_at)
      VALUES (${message.turnId}, ${message.role}, ${message.content}, ${toolCalls}, ${message.toolCallId ?? null},
        ${message.compacted ? 1 : 0}, ${createdAt})
      RETURNING id`;
    return { ...message, id: Number(row.id), createdAt };
  }

  /** Characters of the tool outputs turn `turnId` holds so far (its tool-output budget counts them). */
  toolOutputChars(turnId: string): number {
    let chars = 0;
    for (const row of this.sql<{ content: string | null }>`SELECT content FROM conversation
      WHERE turn_id = ${turnId} AND role = 'tool'`)
      chars += row.content?.length ?? 0;
    return chars;
  }

  /** Messages of one turn, in order. */
  turnMessages(turnId: string): ConversationEntry[] {
    return this.sql<MessageRow>`SELECT * FROM conversation WHERE turn_id = ${turnId} ORDER BY id ASC`.map(toEntry);
  }

  /**
   * At most `turns` recent finished turns, each with its messages and the context snapshot it was asked with, in
   * the order they finished (so the history only ever grows at its end).
   *
   * The window does not slide by one turn per request, which would change the prompt right after the system message
   * every time and defeat the engine's prefix cache. It moves in steps (see historyWindowBase) over the finish order
   * (reason_turns.finish_order), the order pruning deletes turns in: between two steps the history is append-only and
   * consecutive prompts share it, and a turn that finished late (after an operator's approval, while later turns were
   * answered) is in the window as the newest turn it is. Placed by turn number instead, such a turn would sit below
   * the window's base for good, kept by pruning yet in no prompt. The window starts no earlier than the newest turn
   * that was answered without history.
   *
   * `newestDone`: the finish order of the newest turn that ended done, which places the window
   * (TurnStore.newestDone keeps it in memory); read here when not given.
   */
  history(turns: number, newestDone?: number): HistoryTurn[] {
    if (turns <= 0) return [];
    const last = newestDone ?? newestDoneFinishOrder(this.sql);
    const base = historyWindowBase(last, turns);
    // Walks the finish_order index from the base (`+t.status`: not the status index, which holds nearly every turn),
    // each turn's messages in order by the conversation_turn index: no sort (`t.rowid` tells SQLite the index order
    // is the whole order). finish_order, not finished_at: a wall clock corrected backwards would put the newest turns
    // first.
    const rows = this.sql<
      HistoryRow & { turn_without_history: number }
    >`SELECT c.*, t.context AS turn_context, t.telemetry_mark AS turn_mark, t.without_history AS turn_without_history
      FROM reason_turns t JOIN conversation c ON c.turn_id = t.id
      WHERE t.finish_order > ${base} AND +t.status = 'done'
      ORDER BY t.finish_order ASC, t.rowid ASC, c.id ASC`;
    const out: HistoryTurn[] = [];
    let fresh = 0;
    for (const row of rows) {
      let turn = out.at(-1);
      if (turn === undefined || turn.turnId !== row.turn_id) {
        turn = toHistoryTurn(row);
        // A turn answered without history (the engine refused its prompt as too long) starts the history afresh:
        // the turns before it are what did not fit, and carrying them again would be refused again.
        if (Number(row.turn_without_history) !== 0) fresh = out.length;
        out.push(turn);
      }
      turn.messages.push(toEntry(row));
    }
    return fresh === 0 ? out : out.slice(fresh);
  }

  /**
   * The finished turns `turnIds` names, in that order, as `history` returned them when a turn began (its snapshot,
   * Turn.historyTurns): the later rounds of that turn replay them. A turn pruned since is left out.
   */
  historyOf(turnIds: readonly string[]): HistoryTurn[] {
    if (turnIds.length === 0) return [];
    const byId = new Map<string, HistoryTurn>();
    for (const row of this.sql<HistoryRow>`SELECT c.*, t.context AS turn_context, t.telemetry_mark AS turn_mark
      FROM conversation c JOIN reason_turns t ON t.id = c.turn_id
      WHERE c.turn_id IN (SELECT value FROM json_each(${JSON.stringify(turnIds)}))
      ORDER BY c.id ASC`) {
      let turn = byId.get(row.turn_id);
      if (turn === undefined) {
        turn = toHistoryTurn(row);
        byId.set(row.turn_id, turn);
      }
      turn.messages.push(toEntry(row));
    }
    return turnIds.flatMap((id) => byId.get(id) ?? []);
  }

  /** The last `limit` messages of the whole conversation, oldest first. */
  recent(limit: number): ConversationEntry[] {
    const n = Math.max(0, Math.min(limit, 1000));
    return this
      .sql<MessageRow>`SELECT * FROM (SELECT * FROM conversation ORDER BY id DESC LIMIT ${n}) ORDER BY id ASC`.map(
      toEntry,
    );
  }
}
