/**
 * Turns waiting for their next round (status `queued`): nothing of theirs waits for an operator any more, but the
 * device's running turns are at `maxConcurrentTurns`, or nobody could receive the answer now (the device is
 * offline). A queued turn starts when both are there, in the order the questions were asked, one slot each, as soon
 * as a slot frees (a turn ends or parks for an approval) or the device is greeted again. So a turn resumed after an
 * approval, a restart or a reconnect never runs beyond the bound that new requests are refused at.
 */
import type { Reasoner } from "./reasoner.ts";
import { endViewerTurn } from "./viewer-turns.ts";

/** Queues turn `turnId` for its next round and starts what may run now (perhaps that turn). */
export function queueTurn(reasoner: Reasoner, turnId: string): void {
  reasoner.turns.setStatus(turnId, "queued");
  startQueuedTurns(reasoner);
}

/**
 * Starts queued turns, oldest first, while slots are free. A device's turn nobody could receive now stays queued and
 * lets the next one pass; a viewer's turn whose viewer is gone ends (it would have ended with its connection).
 * `closingId`: a connection that is closing, and counts as gone. Costs no statement while no turn is queued (every
 * turn's end asks).
 */
export function startQueuedTurns(reasoner: Reasoner, closingId?: string): void {
  const { turns } = reasoner;
  const max = reasoner.core.options.maxConcurrentTurns;
  // Read again after every start: starting a round can end a turn instead (no engine), and that end starts queued
  // turns itself.
  for (;;) {
    const waiting = turns.queued();
    if (waiting.length === 0 || turns.open.runningCount() >= max) return;
    let next: (typeof waiting)[number] | undefined;
    for (const turn of waiting) {
      if (reasoner.hasRecipient(turn, closingId)) {
        next = turn;
        break;
      }
      if (turn.origin === "viewer") endViewerTurn(reasoner, turn);
    }
    if (next === undefined) return;
    reasoner.startRound(next);
  }
}
