/**
 * Turns a viewer asked (a WebSocket client on the agent, origin "viewer"): the device never asked them, so their
 * frames go to that viewer only, and when its connection closes they end, whatever they were doing: a running round
 * is cancelled, and a turn waiting for an approval or queued for a slot ends too, its pending approvals cancelled
 * (status "cancelled", off the operator's list), so no operator decides an action nobody waits for and no answer is
 * generated for nobody. A restart closes a viewer lost with the old process the same way.
 */
import { closeApproval } from "./approval-close.ts";
import type { Reasoner } from "./reasoner.ts";
import type { Turn } from "./turn.ts";

/**
 * Whether a viewer's turn streams when its `reason` frame does not say: a viewer is a WebSocket client, which takes
 * streamed chunks whatever the device's hello said it can take.
 */
export const VIEWER_STREAMS = true;

/** Finish reason stored with a viewer's turn that ended with its connection. */
export const VIEWER_CLOSED = "viewer-closed";

/** Why such a turn's pending approvals were cancelled (the approval's `reason`). */
export const VIEWER_CLOSED_APPROVAL_REASON = "the viewer that asked for this disconnected before a decision";

/** Viewer connection `connId` is closing: every turn it asked that has not ended ends now. */
export function endViewerTurns(reasoner: Reasoner, connId: string): void {
  for (const turn of reasoner.turns.openOf(connId)) endViewerTurn(reasoner, turn);
}

/** Ends a viewer's open turn (its viewer is gone): nothing is sent, its round and approvals are cancelled. */
export function endViewerTurn(reasoner: Reasoner, turn: Turn): void {
  const { core } = reasoner;
  for (const approvalId of reasoner.approvals.pendingIdsOfTurn(turn.id)) {
    closeApproval(reasoner, approvalId, "cancelled", VIEWER_CLOSED_APPROVAL_REASON);
  }
  reasoner.turns.finish(turn.id, "cancelled", VIEWER_CLOSED);
  if (turn.status === "running" && turn.taskId !== null) core.ports.cancelTask(turn.taskId);
  core.ports.logger.debug(
    { turn: turn.id, request: turn.requestId, status: turn.status },
    "a viewer's reasoning turn ended with its connection",
  );
}
