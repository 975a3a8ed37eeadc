/**
 * Closing a pending approval, whoever decides it: an operator or its expiry alarm (approval-flow.ts), or the end of a
 * viewer's turn that nobody waits for any more (viewer-turns.ts). The decision is recorded, the expiry alarm goes
 * (unless it is the alarm deciding), and so does the fleet directory entry, so operators are no longer asked.
 */
import type { ApprovalStatus } from "./approval-store.ts";
import { APPROVAL_DIRECTORY_KIND } from "./approval-store.ts";
import type { Reasoner } from "./reasoner.ts";

/** Closes pending approval `approvalId` with `decision`; false when it was not pending (decided already, or unknown). */
export function closeApproval(
  reasoner: Reasoner,
  approvalId: string,
  decision: Exclude<ApprovalStatus, "pending">,
  reason: string | null,
): boolean {
  const { approvals, core } = reasoner;
  if (!approvals.resolve(approvalId, decision, reason)) return false;
  const scheduleId = approvals.scheduleOf(approvalId);
  // An expiry is decided by that very schedule, which ends by itself.
  if (scheduleId !== null && decision !== "expired") core.ports.cancelSchedule(scheduleId);
  core.ports.directory.put(APPROVAL_DIRECTORY_KIND, approvalId, null);
  return true;
}
