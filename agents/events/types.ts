import type { Value } from "../../codecs/frames.ts";
import type { CloseReason, ConnectionInit, InboundMessage } from "../host.ts";

/** Everything that runs in an agent's mailbox, one at a time. */
export type AgentEvent =
  /**
   * First event after a wake. `settledTasks`: tasks whose outcome event waits behind it (they ended while an earlier
   * handle was open): not interrupted, their outcome events finish them.
   */
  | { kind: "start"; settledTasks?: ReadonlySet<string> }
  | { kind: "wake" }
  /**
   * The first event of a fresh instance after its predecessor was retired (a callback timed out, retirement.ts): what
   * the retired instance could not act on. `errors` go to onError; `resync` names the protocol connections that missed
   * a state broadcast, each sent the committed state.
   */
  | { kind: "handover"; errors: ReadonlyArray<{ err: unknown; event: string }>; resync: readonly string[] }
  | { kind: "open"; init: ConnectionInit }
  | { kind: "message"; connectionId: string; message: InboundMessage }
  | { kind: "close"; connectionId: string; reason: CloseReason }
  | { kind: "call"; method: string; args: Value[] }
  /**
   * A copy of the agent's database into the new file `into` (a backup, runtime-snapshot.ts). Never part of a batch:
   * the drain runs it between batches, where no transaction is open (cell-snapshot.ts).
   */
  | { kind: "snapshot"; into: string }
  | { kind: "alarm" }
  | { kind: "queue" }
  | { kind: "task-progress"; taskId: string; batch: ProgressBatch }
  | { kind: "task-done"; taskId: string; result: Value; origin?: TaskOrigin }
  | { kind: "task-failed"; taskId: string; error: { code: string; message: string }; origin?: TaskOrigin };

/**
 * How one event ended, after its batch committed (or failed). `retryInMs`: the failure says when the same event may
 * succeed (the error's `details.retryInMs`, e.g. an agent whose start backs off); absent when it does not say.
 */
export type EventOutcome =
  | { status: "committed"; value: Value }
  | { status: "failed"; code: string; message: string; retryInMs?: number };

/**
 * An event waiting in a mailbox. `user` events (deliver) count against the mailbox capacity. `resolve` is called once
 * with the event's outcome; one that throws is logged and changes nothing else (cell-mailbox.ts, settleEvent).
 */
export interface QueuedEvent {
  event: AgentEvent;
  user: boolean;
  resolve: (outcome: EventOutcome) => void;
}

/**
 * Progress updates of one task waiting in its one pending task-progress event. Updates reported while the event
 * waits join it (in order) instead of adding mailbox events, so a per-token stream into a slow agent costs one event,
 * not one per token. `taken` is set when the event starts: later updates start a new batch.
 */
export interface ProgressBatch {
  readonly updates: Value[];
  taken: boolean;
  /** The task the updates belong to, as this process started it (so the event needs no read of the task row). */
  readonly origin?: TaskOrigin;
}

/**
 * What a task event knows of its task without reading `_bridge_tasks`: the row as written and the database handle it
 * was written through. Valid only while that handle is the cell's current one (see `agents/events/task.ts`).
 */
export interface TaskOrigin {
  readonly id: string;
  readonly kind: string;
  /**
   * The stored (encoded) input, decoded afresh for each event as a read of the row would be. An eager task's is set
   * as its row is written (agents/tasks.ts), before the commit that lets its events run.
   */
  input: Uint8Array;
  readonly startedAt: number;
  readonly handle: object;
}
