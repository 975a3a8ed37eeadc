import { type HookKind, withHookTimeLimit } from "../callback-timeout.ts";
import type { AgentCell } from "../cell.ts";
import { ConnectionImpl, type ConnectionRow } from "../connection.ts";
import { indexDirectory } from "../cell-state.ts";
import { readDirectoryEntries } from "../directory-index.ts";
import { storedTaskInfo } from "../stored-task-info.ts";
import { outcomeHookFailed } from "./task.ts";

/**
 * First event after a wake. Reattaches persisted connections to the transports the host kept; a row without a
 * transport belonged to a previous process, so it is closed with reason "shutdown". Runs onStart, then tells the
 * agent about tasks that were unfinished at the last stop (not while the runtime shuts down: the next start does), and
 * reconciles its fleet-directory entries.
 * `settledTasks`: tasks that did finish and whose outcome event waits in the mailbox (the previous instance was
 * retired, or its batch abandoned, before it ran): that event reports them, so they are not interrupted.
 * A hook that does not settle within callbackTimeoutMs retires the instance: the event stops after it (see startHook).
 */
export async function handleStart(cell: AgentCell, settledTasks?: ReadonlySet<string>): Promise<null> {
  const agent = cell.agent!;
  const sql = cell.sqlRunner();
  const stale: ConnectionImpl[] = [];
  for (const row of sql.all<ConnectionRow>("SELECT * FROM _bridge_connections")) {
    const transport = cell.core.transportOf(cell.id, row.id);
    const conn = ConnectionImpl.fromRow(cell, row, transport ?? DEAD_TRANSPORT);
    if (transport === undefined) stale.push(conn);
    cell.connections.set(conn.id, conn);
  }
  if (!(await startHook(cell, "onStart", () => agent.onStart()))) {
    // A start that hangs every time would retire one instance after another for good: the next wakes back off.
    cell.core.startBackoff.timedOut(cell.id, cell.retired);
    return null;
  }
  cell.core.startBackoff.started(cell.id);
  // Each lost connection is among the agent's connections during its own onClose, as a live one is when it closes,
  // but the others lost with it are out of sight by then: a hook must not take a connection of the previous process
  // for one it can still reach (DeviceAgent would start a queued reasoning turn's round for it).
  for (const conn of stale) cell.connections.delete(conn.id);
  for (const conn of stale) {
    cell.connections.set(conn.id, conn);
    const live = await startHook(cell, "onClose", () => agent.onClose(conn, "shutdown"));
    sql.run("DELETE FROM _bridge_connections WHERE id = ?", conn.id);
    cell.connections.delete(conn.id);
    if (!live) return null;
  }
  // A wake while the runtime shuts down (a fresh instance draining what waited behind a retired one) leaves unfinished
  // tasks their rows, as the shutdown does for every agent: the next start reports each once.
  const rows = cell.core.closing
    ? []
    : sql.all<{ id: string; kind: string; input: Uint8Array | null; started_at: number }>(
        "SELECT * FROM _bridge_tasks ORDER BY started_at, id",
      );
  for (const row of rows) {
    if (cell.tasks.has(row.id) || settledTasks?.has(row.id) === true) continue;
    sql.run("DELETE FROM _bridge_tasks WHERE id = ?", row.id);
    const read = () => storedTaskInfo(row.id, row.kind, row.input, row.started_at);
    const info = read();
    const failed = () => outcomeHookFailed(cell, "onTaskInterrupted", read);
    if (!(await startHook(cell, "onTaskInterrupted", () => agent.onTaskInterrupted(info), failed))) return null;
  }
  const entries = readDirectoryEntries(sql);
  cell.output({
    type: "action",
    run: () => indexDirectory(cell, () => cell.core.db.directoryReplace(cell.id, entries)),
  });
  cell.queueDirty = true;
  cell.alarmDirty = true;
  return null;
}

/**
 * Runs one hook of the start event in its own savepoint, bounded by callbackTimeoutMs; a failure is reported (as a
 * throw), then `failed` runs (onTaskInterrupted's: the agent may end what waited for the task, task.ts), and the
 * event goes on. False once the hook timed out and so retired the agent instance: the event stops there, since the
 * rest would run on an instance that can no longer reach the runtime. It commits what it did (a
 * lost connection whose onClose ran is gone, an interrupted task that was reported is done with), and the fresh
 * instance's start does the rest, onStart first. So an onClose or onTaskInterrupted that hangs every time costs one
 * time limit per connection or task, not a loop; an onStart that hangs every time retires each instance it runs on,
 * and after the second in a row the agent's wakes back off (start-backoff.ts).
 */
async function startHook(
  cell: AgentCell,
  hook: HookKind,
  run: () => void | Promise<void>,
  failed?: () => void,
): Promise<boolean> {
  try {
    await cell.nestedAsync(async () => withHookTimeLimit(cell, hook, run()));
  } catch (err) {
    cell.reportError(err, hook);
    failed?.();
  }
  return cell.retired === null;
}

/** Stands in for a transport that died with a previous process; nothing is sent through it. */
const DEAD_TRANSPORT = {
  send(): void {},
  sendProtocol(): void {},
  close(): void {},
};
