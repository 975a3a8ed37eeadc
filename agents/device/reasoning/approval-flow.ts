/**
 * Tool calls of a round: tools that need no approval run at once; the others become pending approvals (own table +
 * fleet directory entry "approval") and park the turn. `resolveApproval` runs the tool (or tells the model it was
 * refused) and, once nothing of the turn is pending, queues the turn for its next engine round (turn-queue.ts), which
 * streams to the device. All of it is in SQLite, so it works after hibernation and restarts alike.
 */
import type { ValueMap } from "../../../codecs/frames.ts";
import { cutText } from "../../../codecs/cut-text.ts";
import { valueToJson } from "../values.ts";
import type { Approval } from "./approval-store.ts";
import { closeApproval } from "./approval-close.ts";
import { APPROVAL_DIRECTORY_KIND, approvalValue } from "./approval-store.ts";
import type { Reasoner } from "./reasoner.ts";
import type { RoundResult } from "./round.ts";
import { fitToolOutput } from "./tool-output-budget.ts";
import { executeTool } from "./tools.ts";
import type { Turn } from "./turn.ts";
import { queueTurn, startQueuedTurns } from "./turn-queue.ts";

/** Agent method the approval TTL schedule calls (public on DeviceAgent). */
export const EXPIRE_APPROVAL_METHOD = "expireApproval";
export { APPROVAL_DIRECTORY_KIND };

/** The head of the question an operator's list shows with a pending approval, in UTF-16 code units. */
const LISTED_QUESTION_CHARS = 200;

/** Outcome of `resolveApproval`. */
export type ResolveApprovalResult =
  | { status: "ok"; approval: Approval; output: string }
  | { status: "not_found" }
  | { status: "already_resolved"; approval: Approval };

/** Stores a tool's output as the model will see it: within its own bound and what is left of the turn's budget. */
function recordToolOutput(reasoner: Reasoner, turnId: string, toolCallId: string, output: string): string {
  const { maxToolOutputChars, maxTurnToolOutputChars } = reasoner.core.options;
  const { text, compacted } = fitToolOutput(output, reasoner.conversation.toolOutputChars(turnId), {
    maxOutputChars: maxToolOutputChars,
    maxTurnChars: maxTurnToolOutputChars,
  });
  reasoner.conversation.append(turnId, { role: "tool", toolCallId, content: text }, compacted);
  return text;
}

/** Runs or parks the tool calls of a finished round, then continues the turn when nothing waits. */
export function handleToolCalls(reasoner: Reasoner, turn: Turn, round: RoundResult): void {
  const { core } = reasoner;
  const needsApproval = new Set(core.options.toolsRequiringApproval);
  for (const call of round.toolCalls) {
    if (needsApproval.has(call.name)) {
      const approval = reasoner.approvals.create({
        id: reasoner.approvals.nextId(),
        turnId: turn.id,
        toolCallId: call.id,
        tool: call.name,
        args: call.arguments,
      });
      const schedule = core.ports.scheduleIn(core.options.approvalTtlSeconds, EXPIRE_APPROVAL_METHOD, {
        id: approval.id,
      });
      reasoner.approvals.setSchedule(approval.id, schedule.id);
      core.ports.directory.put(
        APPROVAL_DIRECTORY_KIND,
        approval.id,
        approvalValue(approval, {
          requestId: turn.requestId,
          // Request ids are per asker: the origin tells the device's "1" from a viewer's.
          origin: turn.origin,
          question: cutText(turn.question, LISTED_QUESTION_CHARS),
        }),
      );
    } else {
      recordToolOutput(
        reasoner,
        turn.id,
        call.id,
        executeTool(reasoner.tools, call.name, call.arguments, core.ports.now()),
      );
    }
  }
  continueIfUnblocked(reasoner, turn.id);
}

function continueIfUnblocked(reasoner: Reasoner, turnId: string): void {
  if (reasoner.approvals.pendingForTurn(turnId) > 0) {
    reasoner.turns.setStatus(turnId, "awaiting_approval");
    // A running turn that parks frees its slot.
    startQueuedTurns(reasoner);
    return;
  }
  const turn = reasoner.turns.get(turnId);
  if (turn === undefined || (turn.status !== "running" && turn.status !== "awaiting_approval")) return;
  // A turn between two rounds of its own (its tools ran at once) keeps its slot and goes on.
  if (turn.status === "running" && reasoner.hasRecipient(turn)) {
    reasoner.startRound(turn);
    return;
  }
  // Back from an approval: the turn waits for a free slot like a new request, and for someone to receive the answer
  // (generating it while the device is offline would lose it), then resumes in the order the questions were asked.
  queueTurn(reasoner, turnId);
}

/**
 * A device session was greeted: turns whose approvals were all decided while it was offline continue now, as slots
 * allow.
 */
export function resumeWaitingTurns(reasoner: Reasoner): void {
  // Parked with nothing pending by an earlier version (before the queue): they wait as queued turns do.
  for (const turn of reasoner.turns.withStatus("awaiting_approval")) {
    if (reasoner.approvals.pendingForTurn(turn.id) === 0) reasoner.turns.setStatus(turn.id, "queued");
  }
  startQueuedTurns(reasoner);
}

/**
 * An operator (or the expiry alarm) decides a pending approval. Approved: the tool runs now and its output goes to
 * the model. Refused or expired: the model is told so, with the reason. Either way the turn continues.
 */
export function resolveApproval(
  reasoner: Reasoner,
  approvalId: string,
  decision: "approved" | "rejected" | "expired",
  reason: string | null,
): ResolveApprovalResult {
  const approval = reasoner.approvals.get(approvalId);
  if (approval === undefined) return { status: "not_found" };
  if (!closeApproval(reasoner, approvalId, decision, reason)) return { status: "already_resolved", approval };
  const { core } = reasoner;
  const refusal: ValueMap = {
    error: decision === "expired" ? "the operator did not approve this in time" : "the operator refused this action",
  };
  if (reason !== null) refusal.reason = reason;
  const raw =
    decision === "approved"
      ? executeTool(reasoner.tools, approval.tool, approval.args, core.ports.now())
      : valueToJson(refusal);
  const output = recordToolOutput(reasoner, approval.turnId, approval.toolCallId, raw);
  // Read before the turn goes on: it may end at once (no engine), and turns ending after it may prune its approvals.
  const decided = reasoner.approvals.get(approvalId)!;
  continueIfUnblocked(reasoner, approval.turnId);
  return { status: "ok", approval: decided, output };
}
