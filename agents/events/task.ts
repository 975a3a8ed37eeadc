import type { Value } from "../../codecs/frames.ts";
import { type HookKind, withHookTimeLimit } from "../callback-timeout.ts";
import { OUTCOME_HOOK_FAILED } from "../agent.ts";
import type { AgentCell } from "../cell.ts";
import type { TaskInfo } from "../types.ts";
import type { ProgressBatch, TaskOrigin } from "./types.ts";
import { storedTaskInfo } from "../stored-task-info.ts";

/**
 * The task's row as its event sees it, or undefined when the row is gone. An event that carries its task's origin
 * skips the SELECT while the database handle is the one the row was written through: on that handle only the task's
 * own outcome event deletes the row (and no event of a task follows its outcome), and the row committed before the
 * task started. After a wake (a new handle) the start event may have removed the row and reported the task as
 * interrupted, so the row is read as before. Each call gives an input of its own, decoded when first read
 * (stored-task-info.ts), as a read of the row would.
 */
function taskRow(cell: AgentCell, taskId: string, origin: TaskOrigin | undefined): TaskInfo | undefined {
  if (origin !== undefined && origin.id === taskId && origin.handle === cell.sqlRunner()) {
    return storedTaskInfo(origin.id, origin.kind, origin.input, origin.startedAt);
  }
  const row = cell
    .sqlRunner()
    .get<{ id: string; kind: string; input: Uint8Array | null; started_at: number }>(
      "SELECT * FROM _bridge_tasks WHERE id = ?",
      taskId,
    );
  return row === undefined
    ? undefined
    : storedTaskInfo(row.id, row.kind, row.input, row.started_at);
}

/**
 * Hands a task's coalesced progress to onTaskProgress, one call per update in the order they were reported. A hook
 * that throws fails the whole event (its writes and frames roll back), as one update's event did before coalescing.
 */
export function handleTaskProgress(cell: AgentCell, taskId: string, batch: ProgressBatch): null | Promise<null> {
  batch.taken = true;
  const info = taskRow(cell, taskId, batch.origin);
  if (info === undefined) return null;
  const agent = cell.agent!;
  const updates = batch.updates;
  // Synchronous while the hooks are (the DeviceAgent's): the event then costs no promise, and the batch runner can
  // finish it without a microtask. The first hook that returns a promise continues the rest asynchronously.
  for (let i = 0; i < updates.length; i++) {
    const r = agent.onTaskProgress(info, updates[i]);
    if (r instanceof Promise) return finishProgress(cell, r, info, updates, i + 1);
  }
  return null;
}

/** The rest of handleTaskProgress once a hook returned a promise; each hook is bounded by callbackTimeoutMs alone. */
async function finishProgress(
  cell: AgentCell,
  pending: Promise<void>,
  info: TaskInfo,
  updates: readonly Value[],
  from: number,
): Promise<null> {
  const agent = cell.agent!;
  await withHookTimeLimit(cell, "onTaskProgress", pending);
  for (let i = from; i < updates.length; i++) {
    const r = agent.onTaskProgress(info, updates[i]);
    if (r instanceof Promise) await withHookTimeLimit(cell, "onTaskProgress", r);
  }
  return null;
}

/**
 * The outcome hooks run in their own savepoint: the task row is removed even when the hook throws, or does not settle
 * within callbackTimeoutMs (which retires the agent instance too, callback-timeout.ts). When it failed, the agent is
 * told before the row goes (outcomeHookFailed).
 */
async function finish(
  cell: AgentCell,
  taskId: string,
  origin: TaskOrigin | undefined,
  hook: (info: TaskInfo) => void | Promise<void>,
  name: HookKind,
) {
  const info = taskRow(cell, taskId, origin);
  if (info === undefined) return;
  try {
    await cell.nestedAsync(async () => withHookTimeLimit(cell, name, hook(info)));
  } catch (err) {
    cell.reportError(err, name);
    outcomeHookFailed(cell, name, () => taskRow(cell, taskId, origin));
  }
  cell.sqlRunner().run("DELETE FROM _bridge_tasks WHERE id = ?", taskId);
}

/**
 * Task outcome hook `hook` failed (and was reported): the agent may end what waited for the task's outcome
 * (OUTCOME_HOOK_FAILED, agent.ts), in a savepoint of its own, once. A throw of it is reported under the hook's name
 * and not retried, so a fault that fails both costs two reports, never a loop. Not on an instance the hook's time
 * limit retired: its calls are refused, and the fresh instance's onStart looks for what was left. `task`: the task
 * as the hook got it, read again (the hook may have changed the object it was handed).
 */
export function outcomeHookFailed(cell: AgentCell, hook: HookKind, task: () => TaskInfo | undefined): void {
  if (cell.retired !== null || cell.agent === null) return;
  const info = task();
  if (info === undefined) return;
  const agent = cell.agent;
  try {
    cell.nested(() => agent[OUTCOME_HOOK_FAILED](info));
  } catch (err) {
    cell.reportError(err, hook);
  }
}

export async function handleTaskDone(
  cell: AgentCell,
  taskId: string,
  result: Value,
  origin?: TaskOrigin,
): Promise<null> {
  await finish(cell, taskId, origin, (info) => cell.agent!.onTaskDone(info, result), "onTaskDone");
  return null;
}

export async function handleTaskFailed(
  cell: AgentCell,
  taskId: string,
  error: { code: string; message: string },
  origin?: TaskOrigin,
): Promise<null> {
  await finish(cell, taskId, origin, (info) => cell.agent!.onTaskFailed(info, error), "onTaskFailed");
  return null;
}
