import { BridgeError } from "../errors/bridge-error.ts";
import { ROLLED_BACK } from "./agent.ts";
import type { AgentCell } from "./cell.ts";
import { afterBatch, releaseOutputs } from "./cell-after-batch.ts";
import { AGENT_ERRORS, errorCode } from "./errors.ts";
import { callOnError } from "./on-error.ts";
import { handOverError } from "./retirement.ts";
import { Scope } from "./scope.ts";

// The scopes of AgentCell (cell.ts): a write outside any event in its own transaction, nested savepoints inside an
// event, and what a rollback owes the agent's memory. `cell.scope` is the innermost scope now open (null between
// events); a batch's event scopes are opened by cell-batch.ts. Functions taking the cell, like cell-batch.ts.

/** AgentCell.write: runs `fn` in the current event, or alone in its own transaction when no event runs. */
export function write<T>(cell: AgentCell, fn: () => T): T {
  if (cell.scope !== null) return fn();
  const sql = cell.sqlRunner();
  // BEGIN first: if SQLite refuses it, no scope is left behind as the cell's current one.
  sql.control("BEGIN");
  const scope = new Scope(null, true);
  cell.scope = scope;
  try {
    const result = fn();
    writeDeferred(scope);
    sql.control("COMMIT");
    cell.scope = null;
    releaseOutputs(cell, scope.outputs);
    if (!cell.running) afterBatch(cell);
    return result;
  } catch (err) {
    // rollback(), not ROLLBACK when inTransaction: a transaction SQLite rolled back on its own is ended too (#lost).
    sql.rollback();
    cell.scope = null;
    scope.rollback();
    throw err;
  }
}

/**
 * Runs the writes `scope` deferred to its end (Scope.addDeferredWrite), in order, as its work ended well and before
 * its savepoint is released or its transaction commits, so they are part of it: one that throws fails the scope as a
 * throw of its own work would (its writes and in-memory changes roll back). Called for an event by the batch runner
 * (cell-batch.ts), for a nested savepoint and a write outside events here.
 */
export function writeDeferred(scope: Scope): void {
  for (const write of scope.takeDeferredWrites()) write();
}

/** AgentCell.nested: a synchronous savepoint; `fn`'s writes and in-memory changes roll back alone when it throws. */
export function nested<T>(cell: AgentCell, fn: () => T): T {
  if (cell.scope === null) return write(cell, () => nested(cell, fn));
  const scope = enterNested(cell);
  try {
    const result = fn();
    if (result instanceof Promise) {
      // The async function has started and goes on: a later rejection of it is logged, since left unhandled it
      // would end the process (app/cli/start.ts exits on an unhandled rejection), every other agent with it.
      result.catch((lateErr: unknown) =>
        cell.core.logger.error({ err: lateErr, agent: cell.id }, "the async function given to transaction() failed"),
      );
      throw new BridgeError(AGENT_ERRORS.INVALID_OPTION, "transaction() takes a synchronous function", {
        field: "fn",
      });
    }
    keepNested(cell, scope);
    return result;
  } catch (err) {
    unwindNested(cell, scope);
    throw err;
  }
}

/** AgentCell.nestedAsync: a savepoint around an awaited hook or callback inside an event (rpc, schedule, queue). */
export async function nestedAsync<T>(cell: AgentCell, fn: () => Promise<T>): Promise<T> {
  const scope = enterNested(cell);
  try {
    const result = await fn();
    keepNested(cell, scope);
    return result;
  } catch (err) {
    unwindNested(cell, scope);
    throw err;
  }
}

/**
 * Opens a nested savepoint and makes its scope the cell's current one. The savepoint first: if SQLite refuses it,
 * the cell's current scope is left as it was.
 */
function enterNested(cell: AgentCell): Scope {
  cell.sqlRunner().control("SAVEPOINT nest");
  const scope = new Scope(cell.scope);
  cell.scope = scope;
  return scope;
}

/**
 * The nested work succeeded: its deferred writes run, its savepoint is released and its effects join the enclosing
 * scope. A deferred write that throws fails the nested work (the caller unwinds it).
 */
function keepNested(cell: AgentCell, scope: Scope): void {
  writeDeferred(scope);
  cell.sqlRunner().control("RELEASE nest");
  cell.scope = scope.parent;
  scope.mergeIntoParent();
}

function unwindNested(cell: AgentCell, scope: Scope): void {
  const sql = cell.sqlRunner();
  if (sql.inTransaction) {
    sql.control("ROLLBACK TO nest");
    sql.control("RELEASE nest");
  }
  cell.scope = scope.parent;
  scope.rollback();
  // A savepoint rolled back without an error report (a schedule or queue callback that will be retried, a
  // transaction() whose error the caller caught) undoes rows the agent may have cached too.
  rolledBack(cell);
}

/** Tells the agent that rows it wrote were rolled back, so it drops what it cached of them (see ROLLED_BACK). */
export function rolledBack(cell: AgentCell): void {
  try {
    cell.agent?.[ROLLED_BACK]();
  } catch (hookErr) {
    cell.core.logger.error({ err: hookErr, agent: cell.id }, "dropping cached rows failed");
  }
}

/** AgentCell.reportError: an event's work failed and rolled back; the observer and the agent's onError learn it. */
export function reportError(cell: AgentCell, err: unknown, event: string): void {
  // Before onError, and whatever a subclass's onError does: memory must not stay ahead of the rolled-back rows.
  rolledBack(cell);
  tellError(cell, err, event);
}

/**
 * The observer's and the agent's onError, for a failure whose rollback the agent was already told of (rolledBack).
 * A retired instance (a callback timed out) could not act on it, every call it makes into the runtime being refused:
 * its onError is told later, or the fresh instance's is, when the cell retires (retirement.ts, cell-lifecycle.ts).
 */
export function tellError(cell: AgentCell, err: unknown, event: string): void {
  // Never throws (the runtime guards the observer's hooks, guarded-observer.ts): this also runs after a batch's
  // COMMIT (the onError of its failures waits for it, cell-batch.ts), where a throw would keep the rest of the
  // batch's bookkeeping from running.
  cell.core.observer.onError?.({ agentId: cell.id, event, code: errorCode(err) });
  if (cell.retired !== null && !cell.closed) handOverError(cell, err, event);
  else tellAgent(cell, err, event);
}

/** The agent's onError (or the log, without an agent object); a throwing onError is logged. */
export function tellAgent(cell: AgentCell, err: unknown, event: string): void {
  try {
    if (cell.agent !== null) callOnError(cell.agent, err, event);
    else cell.core.logger.error({ err, agent: cell.id, event }, "agent event failed");
  } catch (hookErr) {
    cell.core.logger.error({ err: hookErr, agent: cell.id }, "onError threw");
  }
}
