import { BridgeError } from "../errors/bridge-error.ts";
import type { AgentCell } from "./cell.ts";
import { AGENT_ERRORS } from "./errors.ts";

// Retiring an agent instance. A callback awaited inside an event (schedule callback, queue item, operator call, hook)
// that never settles (callback-timeout.ts) is failed so its agent's mailbox can move on, but its promise keeps running
// and may call the agent's API later: sql, setState, schedule, queue, a connection's send. Inside another event such a
// call would join that event's transaction and commit with it (a write made outside any event joins the event running
// then, cell-scope.ts), and nothing can tell it from the event's own. So the instance that ran it is cut off at once:
// every call it makes into the runtime from then on throws BRIDGE_ERR_AGENT_RETIRED (agent.ts and connection.ts reach
// their cell through liveCell), and the cell leaves memory once its batch ends (cell-lifecycle.ts, retireCell). A
// fresh instance is woken from the database, as after hibernation. The runtime keeps the cell's internals until then.
//
// What the retired instance could not act on is handed to the fresh one (a Handover, carried by its first event,
// events/handover.ts): the failures its onError would have heard of (a retired onError could not even record them),
// and the protocol connections whose state broadcast it left out (it could not vet the frame, protocol-output.ts),
// so that each of them is sent the committed state.

/** What a retired agent instance leaves its successor (see the top of this file). */
export interface Handover {
  readonly errors: Array<{ err: unknown; event: string }>;
  /** Ids of protocol connections that missed a state broadcast of the retired instance. */
  readonly resync: Set<string>;
}

/** Cuts the cell's agent instance off (see the top of this file); `cause` is the timeout that retired it. */
export function markRetired(cell: AgentCell, cause: BridgeError): void {
  if (cell.retired !== null) return;
  cell.retired = cause;
  // Schedules and queue items the cut-off event left due run on the next instance: the alarm index must say so.
  cell.alarmDirty = true;
  cell.core.logger.warn(
    { agent: cell.id, code: cause.code, ...cause.details },
    "a callback ran past callbackTimeoutMs: the agent instance is retired and the next event starts a fresh one",
  );
}

/** `cell`, unless its agent instance was retired: then BRIDGE_ERR_AGENT_RETIRED (the agent API's gate). */
export function liveCell(cell: AgentCell): AgentCell {
  if (cell.retired === null) return cell;
  throw new BridgeError(
    AGENT_ERRORS.AGENT_RETIRED,
    `this instance of agent ${cell.id} was retired after a callback ran past callbackTimeoutMs; it can no longer ` +
      "reach the agent's database, state, schedules, queue or connections",
    { agent: cell.id },
    { cause: cell.retired },
  );
}

function handoverOf(cell: AgentCell): Handover {
  cell.handover ??= { errors: [], resync: new Set() };
  return cell.handover;
}

/** A failure of the retired instance's batch, for the fresh instance's onError (tellError, cell-scope.ts). */
export function handOverError(cell: AgentCell, err: unknown, event: string): void {
  handoverOf(cell).errors.push({ err, event });
}

/** A state broadcast the retired instance left out for `connectionId`: the fresh instance sends the committed state. */
export function handOverStateSync(cell: AgentCell, connectionId: string): void {
  handoverOf(cell).resync.add(connectionId);
}

/**
 * Most failures one handover carries. Instances retired in their own start pass theirs on as one (cell-lifecycle.ts,
 * retireCell), one onStart timeout more each time: with an onStart that hangs for days, that list grew by one error a
 * try (every 5 min at the backoff's longest, start-backoff.ts) until the agent started again.
 */
export const MAX_HANDOVER_ERRORS = 100;

/**
 * The failures of an earlier handover, then those of a later one, at most MAX_HANDOVER_ERRORS: the earliest are kept
 * (where a run of failures began); the later ones beyond are only in the log (each retirement's warn line).
 */
export function joinHandoverErrors<T>(earlier: readonly T[], later: readonly T[]): T[] {
  return [...earlier, ...later].slice(0, MAX_HANDOVER_ERRORS);
}

/** The cell's handover, now taken from it (null when there is none). */
export function takeHandover(cell: AgentCell): Handover | null {
  const handover = cell.handover;
  cell.handover = null;
  return handover;
}
