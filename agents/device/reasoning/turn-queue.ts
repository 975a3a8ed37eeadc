/**
 * Slots and the turns waiting for one. A running turn holds a slot of its origin: the device's turns one of
 * `maxConcurrentTurns`, viewers' turns (all viewers together) one of `maxConcurrentViewerTurns`, so an operator asking
 * never takes the device's own. A turn waiting for its next round (status `queued`) has nothing of its own waiting
 * for an operator any more, but its origin's slots are all taken, or nobody could receive the answer now (the device
 * is offline). A queued turn starts when both are there, in the order the questions were asked, one slot each, as
 * soon as a slot of its origin frees (a turn ends or parks for an approval) or the device is greeted again. So a turn
 * resumed after an approval, a restart or a reconnect never runs beyond the bound that new requests are refused at.
 */
import type { Reasoner } from "./reasoner.ts";
import type { TurnOrigin } from "./turn.ts";
import { endViewerTurn } from "./viewer-turns.ts";

/** Whether a turn of `origin` may run a round now: its origin's running turns are below their bound. From memory. */
export function hasFreeSlot(reasoner: Reasoner, origin: TurnOrigin): boolean {
  const { options } = reasoner.core;
  const max = origin === "device" ? options.maxConcurrentTurns : options.maxConcurrentViewerTurns;
  return reasoner.turns.open.runningCount(origin) < max;
}

/** Queues turn `turnId` for its next round and starts what may run now (perhaps that turn). */
export function queueTurn(reasoner: Reasoner, turnId: string): void {
  reasoner.turns.setStatus(turnId, "queued");
  startQueuedTurns(reasoner);
}

/**
 * Starts queued turns, oldest first, while their origin has a free slot. A device's turn nobody could receive now
 * stays queued and lets the next one pass; a viewer's turn whose viewer is gone ends (it would have ended with its
 * connection). `closingId`: a connection that is closing, and counts as gone. Costs no statement while no turn is
 * queued (every turn's end asks).
 */
export function startQueuedTurns(reasoner: Reasoner, closingId?: string): void {
  const { turns } = reasoner;
  // Read again after every start: starting a round can end a turn instead (no engine), and that end starts queued
  // turns itself.
  for (;;) {
    const waiting = turns.queued();
    if (waiting.length === 0) return;
    let next: (typeof waiting)[number] | undefined;
    for (const turn of waiting) {
      // A full origin holds its own turns back, not the other's.
      if (!hasFreeSlot(reasoner, turn.origin)) continue;
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
