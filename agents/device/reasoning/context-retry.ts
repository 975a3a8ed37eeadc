/**
 * The one engine refusal a shorter prompt can cure: a round refused as too long for the engine's context window.
 * Once per turn, when the refused prompt carried history, the round is asked again without it (question, profile, a
 * fresh context snapshot and the turn's own tool rounds), so the device still gets an answer and the history of later
 * turns starts at this one. Otherwise the turn fails as any other refusal does.
 */
import type { TaskInfo } from "../../types.ts";
import { isValueMap } from "../values.ts";
import { startEngineRound } from "./engine-round-start.ts";
import { systemMessageOfTurn } from "./prompt-system.ts";
import type { Reasoner } from "./reasoner.ts";
import type { Turn } from "./turn.ts";

/** The engine refused the current round of `turn` (task `task`) as too long for its context window. */
export function onContextRefused(reasoner: Reasoner, task: TaskInfo, turn: Turn, message: string): void {
  // A round started before this field existed did not say: asking again once is then the safe side.
  const sentHistory = !isValueMap(task.input) || task.input.history !== 0;
  if (turn.withoutHistory || !sentHistory) {
    const detail = turn.withoutHistory ? "the prompt is too long for the engine even without history: " : "";
    reasoner.fail(turn, "BRIDGE_ERR_ENGINE_BAD_REQUEST", `${detail}${message}`);
    return;
  }
  const engine = reasoner.engineFor(turn);
  if (engine === undefined) return;
  const { context, mark } = reasoner.snapshot(undefined);
  const current = { context, messages: reasoner.conversation.turnMessages(turn.id) };
  // The retry is the same round again (round - 1 of them done before it): it keeps the turn's tool offer.
  const prompt = { system: systemMessageOfTurn(reasoner, turn), history: [], current };
  const taskId = startEngineRound(reasoner, engine, turn, turn.round - 1, prompt);
  reasoner.turns.retryWithoutHistory(turn.id, taskId, context, mark);
}
