import { performance } from "node:perf_hooks";
import type { Value } from "../codecs/frames.ts";
import { BridgeError } from "../errors/bridge-error.ts";
import { withHookTimeLimit } from "./callback-timeout.ts";
import type { AgentCell } from "./cell.ts";
import { handBackOnlyInMailbox, isOnlyInMailbox, settleEvent } from "./cell-mailbox.ts";
import { afterBatch, releaseOutputs } from "./cell-after-batch.ts";
import { nestedAsync, reportError, rolledBack, tellError, writeDeferred } from "./cell-scope.ts";
import { queueProtocol } from "./protocol-output.ts";
import { writeStateBytes } from "./cell-state.ts";
import { AGENT_ERRORS, errorCode, errorMessage } from "./errors.ts";
import { dispatchEvent } from "./events/index.ts";
import type { EventOutcome, QueuedEvent } from "./events/types.ts";
import { Scope } from "./scope.ts";
import type { SqlRunner } from "./sql-runner.ts";
import { encodeValue } from "./value-codec.ts";

// The batch, commit and output-gate part of AgentCell (cell.ts): the events waiting when a batch starts run in one
// transaction with a SAVEPOINT each (group commit), and their outputs leave only after COMMIT (output gate). The
// drain that calls runBatch is cell-mailbox.ts.
//
// An event gets its savepoint only when something before it in the batch reached SQLite: until then the transaction
// holds nothing but the event's own writes, so rolling the transaction back rolls back exactly that event (a batch of
// one, and the first writing event of every batch, pay for no savepoint). The first NESTED_SAVEPOINTS savepoints are
// not released when their event ends: they nest until the COMMIT releases them all, and a failing event rolls back
// to its own, the innermost. For four queued events that is 9 statements instead of 14, which moved SQLite's own
// group-commit ceiling here from 1.8x to 2.2x of one transaction per event (docs/benchmarks.md, "Agents"). Deeper in
// a long batch each savepoint is released again: every page write checks every open savepoint, and 64 nested ones
// measured 3 to 9% slower than released ones.
//
// What follows a batch's COMMIT (the output gate opening, the alarm and queue bookkeeping) is cell-after-batch.ts.

/** How many events' savepoints stay open until the COMMIT (see the top of this file). */
const NESTED_SAVEPOINTS = 8;

/** One batch in progress: what its events share (transaction, timing) and how each ended so far. */
interface BatchRun {
  readonly cell: AgentCell;
  readonly batch: QueuedEvent[];
  readonly sql: SqlRunner;
  readonly t0: number;
  /** Savepoints open in SQLite and not released (see NESTED_SAVEPOINTS). */
  savepoints: number;
  readonly timed: boolean;
  readonly done: Array<{ item: QueuedEvent; scope: Scope; outcome: EventOutcome }>;
  /** Failures whose onError waits for the batch's end (see failEvent); null until the first. */
  laterErrors: Array<{ err: unknown; event: string }> | null;
  /**
   * Task reports (and handovers) that had run when the batch failed as a whole (failWithBatch): handed back at its
   * end instead of failed. Null until the first; once set, the batch runs no further event (runSync).
   */
  reportsBack: QueuedEvent[] | null;
  readonly onAsyncEnd: () => void;
}

/**
 * Runs one batch of a cell's mailbox in one transaction and resolves each event with its outcome. Returns undefined
 * when every event finished synchronously (a sync handler that changed no state): then the batch costs no promise
 * and no microtask at all, which is most of the runtime's own cost per event when many agents each run one-event
 * batches (docs/benchmarks.md, "Agents"). Otherwise it returns the promise of the rest of the batch, and calls
 * `onAsyncEnd` (which must not throw) in the same turn as the commit and the resolves, so the cell is idle again
 * before any caller resumed by its outcome runs; the promise rejects only for a fault outside any handler.
 */
export function runBatch(cell: AgentCell, batch: QueuedEvent[], onAsyncEnd: () => void): Promise<void> | undefined {
  const sql = cell.sqlRunner();
  const run: BatchRun = {
    cell,
    batch,
    sql,
    // Read only for onCommit: a clock read per batch is a visible share of a one-event batch.
    t0: cell.core.observer.onCommit !== undefined ? performance.now() : 0,
    savepoints: 0,
    timed: cell.core.observer.onEvent !== undefined,
    done: [],
    laterErrors: null,
    reportsBack: null,
    onAsyncEnd,
  };
  // Lazy: a batch that writes nothing (task progress that only sends frames) never reaches SQLite's BEGIN/COMMIT.
  sql.beginLazy();
  const suspended = runSync(run, 0);
  return suspended === null ? undefined : finishAsync(run, suspended);
}

/** An event whose handler returned a promise (or changed state): the batch continues on the async path. */
interface Suspended {
  i: number;
  scope: Scope;
  e0: number;
  pending: unknown;
  /** The event runs inside its own savepoint (see the top of this file). */
  savepoint: boolean;
}

/**
 * Runs the batch's events from `from` on for as long as they finish synchronously, then commits. Returns the first
 * event that needs the async path instead (the batch is then neither finished nor committed).
 */
function runSync(run: BatchRun, from: number): Suspended | null {
  const { cell, batch, sql } = run;
  for (let i = from; i < batch.length; i++) {
    if (cell.retired !== null || run.reportsBack !== null) {
      handBack(run, i);
      break;
    }
    const item = batch[i];
    const e0 = run.timed ? performance.now() : 0;
    const scope = new Scope(null);
    cell.setScope(scope);
    const savepoint = sql.wrote;
    if (savepoint) {
      sql.control("SAVEPOINT ev");
      run.savepoints++;
    }
    let value: unknown;
    try {
      value = dispatchEvent(cell, item.event);
    } catch (err) {
      settle(run, item, scope, e0, failEvent(run, scope, item, err, savepoint));
      continue;
    }
    // An async handler, or a state change (whose onStateChanged may be async), continues on the async path.
    if (value instanceof Promise || scope.stateSource !== null) return { i, scope, e0, pending: value, savepoint };
    let outcome: EventOutcome;
    try {
      outcome = completeEvent(run, item, scope, value, savepoint);
    } catch (err) {
      outcome = failEvent(run, scope, item, err, savepoint);
    }
    settle(run, item, scope, e0, outcome);
  }
  commitBatch(run);
  return null;
}

/**
 * An event of this batch retired the agent instance (a callback ran past callbackTimeoutMs, retirement.ts): the events
 * after it go back to the front of the mailbox untouched, to run on the fresh instance the next wake makes, and the
 * batch commits without them. Run on the retired instance, their own calls into the runtime would be refused.
 * Likewise after SQLite lost the batch's transaction with task reports that had run in it (failWithBatch): those run
 * again first, so a task's report never runs after a later report of the same task that was behind it in the batch.
 */
function handBack(run: BatchRun, from: number): void {
  const rest = run.batch.splice(from);
  for (const item of rest) if (item.user) run.cell.userDepth++;
  run.cell.mailbox.unshift(...rest);
}

/**
 * The async path: awaits each suspended event's handler and state hook, then runs on synchronously. One loop, not
 * one promise per async event, so the batch's end is as few microtasks after its events resolved as before.
 */
async function finishAsync(run: BatchRun, first: Suspended): Promise<void> {
  let s: Suspended | null = first;
  while (s !== null) {
    const item = run.batch[s.i];
    let outcome: EventOutcome;
    try {
      const value = s.pending instanceof Promise ? await s.pending : s.pending;
      if (!run.sql.inTransaction) lostTransaction(item);
      if (s.scope.stateSource !== null) await finishState(run.cell, s.scope);
      outcome = completeEvent(run, item, s.scope, value, s.savepoint);
    } catch (err) {
      outcome = failEvent(run, s.scope, item, err, s.savepoint);
    }
    settle(run, item, s.scope, s.e0, outcome);
    s = runSync(run, s.i + 1);
  }
  run.onAsyncEnd();
}

function lostTransaction(item: QueuedEvent): never {
  // A storage fault ended the transaction: nothing more may be written outside it.
  throw new BridgeError(AGENT_ERRORS.STORAGE, "the event's transaction was lost", { event: item.event.kind });
}

/** The outcome of most events (a handler that returns nothing): one shared object, never mutated. */
const COMMITTED_NULL: EventOutcome = Object.freeze({ status: "committed", value: null });

/**
 * The handler returned: the writes it deferred to the event's end run (an eager task's row, after the task's first
 * I/O left: tasks.ts), and the event counts as committed once the batch commits. A throw from here fails the event.
 */
function completeEvent(
  run: BatchRun,
  item: QueuedEvent,
  scope: Scope,
  value: unknown,
  savepoint: boolean,
): EventOutcome {
  if (!run.sql.inTransaction) lostTransaction(item);
  writeDeferred(scope);
  if (savepoint && run.savepoints > NESTED_SAVEPOINTS) {
    run.sql.control("RELEASE ev");
    run.savepoints--;
  }
  return value == null ? COMMITTED_NULL : { status: "committed", value: value as Value };
}

/** The handler threw: its writes and in-memory changes roll back alone (or the batch's, when SQLite lost it). */
function failEvent(run: BatchRun, scope: Scope, item: QueuedEvent, err: unknown, savepoint: boolean): EventOutcome {
  const { cell, sql, done } = run;
  if (sql.inTransaction) {
    if (savepoint) {
      sql.control("ROLLBACK TO ev");
      sql.control("RELEASE ev");
      run.savepoints--;
    }
    // Nothing before this event reached SQLite, so the transaction is this event's alone (see the top of this file):
    // rolled back whole. The events before it wrote nothing; the rest of the batch begins a fresh lazy one below.
    else sql.control("ROLLBACK");
  }
  scope.rollback();
  const outcome = failure(err);
  cell.setScope(null);
  if (savepoint && !sql.inTransaction) {
    // SQLite rolled the whole transaction back (a fault such as SQLITE_FULL while spilling): the earlier events of
    // this batch are gone too, so they fail with it. Undone before onError, which may commit a change of its own
    // (setState): undone after it, their undo steps would put back the state from before the batch over that one.
    for (let i = done.length - 1; i >= 0; i--) done[i].scope.rollback();
    for (const d of done) failWithBatch(run, d, outcome);
  }
  // onError runs outside any transaction, as after a batch of one: a change it makes through the runtime's own write
  // (setState, schedule) begins and commits its own. With no savepoint, that is now (the transaction was this event's
  // alone and is rolled back). With one, the batch's transaction holds the earlier events' writes, so onError waits
  // for the batch's end (commitBatch); the agent drops its cached rows now, before the next event can read them. A
  // transaction SQLite lost is not ended here yet, so onError's writes are refused as that event's are
  // (docs/errors.md, BRIDGE_ERR_STORAGE).
  if (savepoint && sql.inTransaction) {
    rolledBack(cell);
    const later = run.laterErrors ?? [];
    later.push({ err, event: item.event.kind });
    run.laterErrors = later;
  } else reportError(cell, err, item.event.kind);
  if (!sql.inTransaction) {
    // The rest start a fresh transaction (which ends a lost one too).
    sql.beginLazy();
    run.savepoints = 0;
  }
  return outcome;
}

/**
 * An event that had run is failed by its batch failing as a whole (a failed COMMIT, a transaction SQLite lost for a
 * later event): its writes are gone with the batch's. A task's report (or a handover) that had succeeded is handed
 * back instead (commitBatch, handBackOnlyInMailbox): nothing else would send it again, so failed, its task would be
 * reported as interrupted at the next wake, its outcome lost. One that failed on its own keeps its own failure.
 */
function failWithBatch(run: BatchRun, d: BatchRun["done"][number], outcome: EventOutcome): void {
  if (d.outcome.status === "committed" && isOnlyInMailbox(d.item)) {
    run.reportsBack ??= [];
    run.reportsBack.push(d.item);
  }
  d.outcome = outcome;
}

function settle(run: BatchRun, item: QueuedEvent, scope: Scope, e0: number, outcome: EventOutcome): void {
  run.cell.setScope(null);
  run.done.push({ item, scope, outcome });
  if (run.timed)
    run.cell.core.observer.onEvent?.({
      agentId: run.cell.id,
      kind: item.event.kind,
      status: outcome.status,
      durationMs: performance.now() - e0,
    });
}

/**
 * COMMIT (or nothing, when nothing reached SQLite), then the output gate opens and every event learns its outcome.
 * From the COMMIT's outcome on, each event of the batch is settled here and only here (see below), and nothing here
 * throws into the drain.
 */
function commitBatch(run: BatchRun): void {
  const { cell, sql, done } = run;
  // Nothing reached SQLite: there is nothing to commit, and the frames may leave at once (the output gate holds).
  const wrote = sql.wrote;
  try {
    sql.control("COMMIT");
    if (wrote) cell.core.countCommit();
  } catch (err) {
    sql.rollback();
    for (let i = done.length - 1; i >= 0; i--) done[i].scope.rollback();
    const outcome = failure(err);
    for (const d of done) failWithBatch(run, d, outcome);
    reportError(cell, err, "commit");
  }
  // The batch's events now have their outcomes: they leave the batch, which the drain hands to abandonBatch if a fault
  // escapes. That would settle them a second time (a committed event failed) and run a task report that committed
  // again; a fault after this point abandons no event.
  const events = run.batch.length;
  run.batch.length = 0;
  // The observer's hooks never throw (the runtime guards them, guarded-observer.ts).
  if (wrote) cell.core.observer.onCommit?.({ agentId: cell.id, events, durationMs: performance.now() - run.t0 });
  const back = run.reportsBack;
  for (const d of done) {
    if (d.outcome.status === "committed") releaseOutputs(cell, d.scope.outputs);
    // Each on its own (settleEvent): a callback that throws keeps no other event from its outcome.
    if (back === null || !back.includes(d.item)) settleEvent(cell, d.item, d.outcome);
  }
  // In front of the events handBack returned: they were ahead of them in the batch.
  if (back !== null) handBackOnlyInMailbox(cell, back);
  // Outside the batch's transaction now, and before any caller resumed by an outcome runs (see failEvent).
  if (run.laterErrors !== null) for (const e of run.laterErrors) tellError(cell, e.err, e.event);
  // In the same synchronous turn as the resolves: a queue flush this batch asked for is in the mailbox before any
  // caller, resumed by its event's outcome, can enqueue its next event.
  afterBatch(cell);
}

/** Persists a state changed in this event, queues its broadcast, then runs onStateChanged in its own savepoint. */
async function finishState(cell: AgentCell, scope: Scope): Promise<void> {
  const changed = scope.stateSource;
  if (changed === null) return;
  const state = cell.getState() ?? null;
  const bytes = encodeValue(state);
  if (bytes.length > cell.core.storage.maxDatabaseBytes) {
    throw new BridgeError(AGENT_ERRORS.STATE_TOO_LARGE, "state is larger than the agent database cap", {
      bytes: bytes.length,
      maxDatabaseBytes: cell.core.storage.maxDatabaseBytes,
    });
  }
  writeStateBytes(cell, scope, bytes);
  // cell.scope is this event's scope here, so what queueProtocol (and the agent's ADMIT_PROTOCOL) queues joins it.
  for (const conn of cell.connections.values()) {
    if (conn.id !== changed.source) queueProtocol(cell, conn, { type: "state", state });
  }
  const source = changed.source === null ? null : (cell.connections.get(changed.source) ?? null);
  const agent = cell.agent!;
  try {
    // Bounded like every awaited hook (callback-timeout.ts); a timeout is reported as a throw and the state commits.
    await nestedAsync(cell, async () => withHookTimeLimit(cell, "onStateChanged", agent.onStateChanged(state, source)));
  } catch (err) {
    reportError(cell, err, "onStateChanged");
  }
}

/** An event outcome for a failure: the stable code and message of `err`, and when to retry where it says so. */
export function failure(err: unknown): EventOutcome {
  const retryInMs = retryHint(err);
  const outcome: EventOutcome = { status: "failed", code: errorCode(err), message: errorMessage(err) };
  if (retryInMs !== undefined) outcome.retryInMs = retryInMs;
  return outcome;
}

/** A BridgeError's `details.retryInMs` when it is a usable wait (a finite number of ms, not negative). */
function retryHint(err: unknown): number | undefined {
  if (!(err instanceof BridgeError)) return undefined;
  const ms = err.details.retryInMs;
  return typeof ms === "number" && Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}
