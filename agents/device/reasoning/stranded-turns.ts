/**
 * Stranded turns: a turn whose status says `running` while its round's task is gone, so no task event will ever end
 * it. It would hold its request id and one of its origin's slots (turn-queue.ts) for good (every later question
 * refused with BRIDGE_ERR_REASON_BUSY, no final frame for it), and restart recovery, which follows task rows, would
 * not see it either. A turn is stranded when ending it failed: the hook that handles its round's outcome threw (a
 * write refused: a full disk, a constraint, a bug in what follows the end), its writes rolled back, and the runtime
 * did away with the task all the same (docs/agents.md, "Callback time limit").
 *
 * So the agent ends such a turn at once, in the same event (the runtime tells it the hook failed:
 * `endTurnOfFailedOutcome`), and, when that cannot be written either, as it next starts, and at the latest when a
 * question of the device would be refused for a running turn (`tryEndStrandedTurns`). A turn waiting for an
 * operator (`awaiting_approval`) or for a slot (`queued`) has no round by design, and is never taken for a stranded
 * one.
 *
 * Ending one does the least that ends it: its `down/error` BRIDGE_ERR_REASON_FAILED, its row (status `failed`), its
 * final frame with fr "error". Not the pruning of old turns, which may be what failed (the next end catches up).
 */
import type { TaskInfo } from "../../types.ts";
import type { Reasoner } from "./reasoner.ts";
import type { Turn } from "./turn.ts";
import { startQueuedTurns } from "./turn-queue.ts";

/** The code a stranded turn's `down/error` carries. */
export const REASON_FAILED = "BRIDGE_ERR_REASON_FAILED";

const REASON_FAILED_MESSAGE = "the bridge failed to finish this request";

/**
 * The hook handling an outcome of task `task` failed and rolled back: when the task was its turn's current round, the
 * turn ends failed now, and its slot goes to a queued turn. A throw here is the runtime's to report; nothing retries
 * it, and the turn is then stranded until the next start or question.
 */
export function endTurnOfFailedOutcome(reasoner: Reasoner, task: TaskInfo): void {
  const turn = reasoner.turnOf(task);
  if (turn === undefined) return;
  endStranded(reasoner, turn, "its round's outcome could not be handled");
  startQueuedTurns(reasoner);
}

/**
 * Ends every running turn whose round has no outcome to come (`hasTask`): returns how many. Queued turns are not
 * started here: at a start, the connections of the previous process are still listed, and a round would go to one of
 * them; a question starts them after this (reasoner.ts). No statement while no turn runs.
 */
export function endStrandedTurns(reasoner: Reasoner): number {
  let ended = 0;
  for (const turn of reasoner.turns.withStatus("running")) {
    if (turn.taskId !== null && reasoner.core.ports.hasTask(turn.taskId)) continue;
    endStranded(reasoner, turn, "it was left running without its round");
    ended++;
  }
  return ended;
}

/**
 * `endStrandedTurns` in a savepoint of its own, for an event that must go on whatever it finds: when ending a turn
 * fails, its writes roll back, the agent's onError is told (with `event`, the event it ran in) and 0 is returned, so
 * a question is refused as busy as it would have been (and the next one looks again) and a start goes on.
 */
export function tryEndStrandedTurns(reasoner: Reasoner, event: string): number {
  const { ports } = reasoner.core;
  try {
    return ports.transaction(() => endStrandedTurns(reasoner));
  } catch (err) {
    ports.reportError(err, event);
    return 0;
  }
}

function endStranded(reasoner: Reasoner, turn: Turn, why: string): void {
  reasoner.sendFailure(turn, REASON_FAILED, REASON_FAILED_MESSAGE);
  reasoner.end(turn.id, "failed", "error");
  reasoner.core.ports.logger.warn(
    { turn: turn.id, request: turn.requestId, task: turn.taskId },
    `a reasoning turn ended failed: ${why}`,
  );
}
