/**
 * The finished turns a round's prompt carries as history. A turn's first round takes the history window as it is
 * then; its later rounds replay exactly those turns (kept with the turn, Turn.historyTurns), not the history as it
 * is by then: turns that finished meanwhile (another turn running beside it, or answered while it waited for an
 * operator) would change the prompt between two rounds of one turn, and break the prefix the engine cached for
 * the first. The next question's history has them, appended in the order they finished.
 */
import type { HistoryTurn } from "./conversation-store.ts";
import { budgetHistory } from "./history-budget.ts";
import type { Reasoner } from "./reasoner.ts";
import type { Turn } from "./turn.ts";

/** The history a new turn's first round carries: the history window (maxHistoryTurns), cut to maxHistoryChars. */
export function currentHistory(reasoner: Reasoner): HistoryTurn[] {
  const { maxHistoryTurns, maxHistoryChars } = reasoner.core.options;
  if (maxHistoryTurns <= 0) return [];
  return budgetHistory(reasoner.conversation.history(maxHistoryTurns, reasoner.turns.newestDone()), maxHistoryChars);
}

/**
 * The history a later round of `turn` carries: the turns its first round carried, those pruned since left out. A turn
 * stored before its history was kept (schema migration 10) reads the history now, as it always did.
 */
export function historyOfTurn(reasoner: Reasoner, turn: Turn): HistoryTurn[] {
  if (turn.withoutHistory) return [];
  if (turn.historyTurns === undefined) return currentHistory(reasoner);
  return reasoner.conversation.historyOf(turn.historyTurns);
}
