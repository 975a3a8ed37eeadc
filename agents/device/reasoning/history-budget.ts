/**
 * The size budget of a prompt's history (DeviceAgent option `maxHistoryChars`): whole finished turns, oldest dropped
 * first, so a device whose turns are long never sends a prompt the engine refuses for its context window.
 *
 * Like the turn-count window (historyWindowBase), the budget does not slide by one turn per request: dropping the
 * oldest turn every time would change the prompt right after the system message on every request and defeat the
 * engine's prefix cache. When the history outgrows the budget it jumps: the oldest turns go until what is left fits
 * in a quarter of the budget, and the history is append-only again until the next jump. The jumps are replayed from
 * the first turn of the window on every request, so two consecutive prompts see the same jumps without storing any.
 */
import type { PromptTurn } from "./prompt.ts";
import { turnToMessages } from "./prompt.ts";

/** Characters `turn` adds to a prompt as history: its messages as rendered, tool-call names and arguments included. */
export function promptTurnChars(turn: PromptTurn): number {
  let chars = 0;
  for (const message of turnToMessages(turn)) {
    chars += message.content?.length ?? 0;
    if (message.role === "assistant" && message.toolCalls !== undefined) {
      for (const call of message.toolCalls) chars += call.name.length + call.arguments.length;
    }
  }
  return chars;
}

/**
 * The turns of `turns` (a history window, in prompt order) that a prompt carries under a budget of `maxChars`
 * characters: a suffix of whole turns, never more than `maxChars` in all. See the file comment for why it jumps.
 */
export function budgetHistory<T extends PromptTurn>(turns: readonly T[], maxChars: number): T[] {
  const sizes = turns.map(promptTurnChars);
  const keepChars = Math.floor(maxChars / 4);
  let start = 0;
  let total = 0;
  for (let i = 0; i < turns.length; i++) {
    total += sizes[i];
    if (total <= maxChars) continue;
    // A jump: keep the newest turns that fit in a quarter of the budget, and the newest one alone whenever it fits
    // the whole budget (the previous answer is what a follow-up question most often refers to).
    let kept = i + 1;
    total = 0;
    while (kept > start) {
      const size = sizes[kept - 1];
      if (total + size > keepChars && !(kept - 1 === i && size <= maxChars)) break;
      kept--;
      total += size;
    }
    start = kept;
  }
  return turns.slice(start);
}
