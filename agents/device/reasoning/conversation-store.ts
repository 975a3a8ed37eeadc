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

/** Converts stored entries to engine messages. */
export function toChatMessages(entries: readonly ConversationEntry[]): ChatMessage[] {
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

  /** Appends a message, compacting oversized text and tool-call arguments (with a note) instead of failing. */
  append(turnId: string, message: ChatMessage): void {
    let compacted = false;
    const guard = (text: string, what: string): string => {
      const result = compactText(text, this.maxMessageChars, what);
      compacted ||= result.compacted;
      return result.text;
    };
    let content: string | null = null;
    let toolCalls: string | null = null;
    let toolCallId: string | null = null;
    switch (message.role) {
      case "assistant": {
        content = message.content === null ? null : guard(message.content, "the assistant message");
        if (message.toolCalls && message.toolCalls.length > 0) {
          // Arguments cut in the middle are no longer JSON; replace them with a JSON note the model can read.
          const calls = message.toolCalls.map((call) => {
            if (call.arguments.length <= this.maxMessageChars) return call;
            compacted = true;
            const note = { compacted: `arguments of ${call.arguments.length} characters were cut` };
            return { ...call, arguments: JSON.stringify(note) };
          });
          toolCalls = JSON.stringify(calls);
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
    this.sql`INSERT INTO conversation (turn_id, role, content, tool_calls, tool_call_id, compacted, created_at)
      VALUES (${turnId}, ${message.role}, ${content}, ${toolCalls}, ${toolCallId}, ${compacted ? 1 : 0}, ${this.now()})`;
  }

  /** Messages of one turn, in order. */
  turnMessages(turnId: string): ConversationEntry[] {
    return this.sql<MessageRow>`SELECT * FROM conversation WHERE turn_id = ${turnId} ORDER BY id ASC`.map(toEntry);
  }

  /** Messages of the last `turns` finished turns, oldest first. */
  history(turns: number): ConversationEntry[] {
    if (turns <= 0) return [];
    return this.sql<MessageRow>`SELECT c.* FROM conversation c
      WHERE c.turn_id IN (SELECT id FROM reason_turns WHERE status = 'done' ORDER BY finished_at DESC, rowid DESC LIMIT ${turns})
      ORDER BY c.id ASC`.map(toEntry);
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
