import type { Value } from "../codecs/frames.ts";
import type { AgentCell } from "./cell.ts";
import type { ProgressBatch, TaskOrigin } from "./events/types.ts";
import { AGENT_ERRORS, errorCode, errorMessage } from "./errors.ts";
import { randomId } from "./ids.ts";
import type { TaskContext, TaskInfo } from "./types.ts";
import { encodeValue } from "./value-codec.ts";

/** A background task in memory. `finished` once its outcome was handed to the mailbox (or it was cancelled). */
export interface RunningTask {
  info: TaskInfo;
  controller: AbortController;
  finished: boolean;
  /** The task's progress event still waiting in the mailbox, which later updates join (at most one per task). */
  progress: ProgressBatch | null;
  /** The row as written, carried by the task's events so they need no SELECT of it (agents/events/task.ts). */
  origin: TaskOrigin;
}

/**
 * Starts background work. The task row is written in the current event, and `run` starts only after that event
 * commits (a rolled-back event starts nothing). Progress and the outcome come back as mailbox events, so the task
 * never holds the mailbox and never races the agent's own events. The row stays until the outcome event ran, so a
 * task cut off by a restart reaches onTaskInterrupted.
 */
export function startTask(
  cell: AgentCell,
  kind: string,
  input: Value,
  run: (task: TaskContext) => Promise<Value>,
): string {
  const id = randomId(cell.core.random);
  const info: TaskInfo = { id, kind, input, startedAt: cell.core.clock.now() };
  const bytes = encodeValue(input);
  cell.write(() => {
    cell
      .sqlRunner()
      .run(
        "INSERT INTO _bridge_tasks (id, kind, input, started_at) VALUES (?, ?, ?, ?)",
        id,
        kind,
        bytes,
        info.startedAt,
      );
    cell.core.alarms.markPending(cell.id);
    // A copy: the encoder's output may share its buffer with later encodings.
    const origin: TaskOrigin = {
      id,
      kind,
      input: Uint8Array.from(bytes),
      startedAt: info.startedAt,
      handle: cell.sqlRunner(),
    };
    const task: RunningTask = { info, controller: new AbortController(), finished: false, progress: null, origin };
    cell.tasks.set(id, task);
    cell.onUndo(() => cell.tasks.delete(id));
    cell.output({ type: "action", run: () => launch(cell, task, run) });
  });
  return id;
}

function launch(cell: AgentCell, task: RunningTask, run: (task: TaskContext) => Promise<Value>): void {
  if (task.finished) return;
  const core = cell.core;
  const agentId = cell.id;
  const taskId = task.info.id;
  const ctx: TaskContext = {
    id: taskId,
    signal: task.controller.signal,
    progress(update: Value, merge?: (previous: Value, update: Value) => Value | undefined): void {
      if (task.finished || core.closing) return;
      const pending = task.progress;
      if (pending !== null && !pending.taken) {
        // The agent is behind: its previous update is still queued, so the two may leave as one.
        const last = pending.updates.length - 1;
        const merged = merge === undefined || last < 0 ? undefined : merge(pending.updates[last], update);
        if (merged !== undefined) pending.updates[last] = merged;
        else pending.updates.push(update);
        return;
      }
      const batch: ProgressBatch = { updates: [update], taken: false, origin: task.origin };
      task.progress = batch;
      core.enqueueInternal(agentId, { kind: "task-progress", taskId, batch });
    },
  };
  const settle = (outcome: { ok: true; result: Value } | { ok: false; err: unknown }) => {
    // After shutdown began the row stays, so the next start reports the task as interrupted.
    if (task.finished || core.closing) return;
    task.finished = true;
    cell.tasks.delete(taskId);
    if (outcome.ok) {
      core.enqueueInternal(agentId, { kind: "task-done", taskId, result: outcome.result ?? null, origin: task.origin });
    } else {
      const error = { code: errorCode(outcome.err), message: errorMessage(outcome.err) };
      if (error.code === AGENT_ERRORS.HANDLER_FAILED) error.code = AGENT_ERRORS.TASK_FAILED;
      core.enqueueInternal(agentId, { kind: "task-failed", taskId, error, origin: task.origin });
    }
  };
  Promise.resolve()
    .then(() => run(ctx))
    .then(
      (result) => settle({ ok: true, result }),
      (err: unknown) => settle({ ok: false, err }),
    );
}

/** Aborts a running task; onTaskFailed then gets BRIDGE_ERR_TASK_CANCELLED. False when no such task runs. */
export function cancelTask(cell: AgentCell, id: string): boolean {
  const task = cell.tasks.get(id);
  if (task === undefined || task.finished) return false;
  task.finished = true;
  cell.tasks.delete(id);
  task.controller.abort();
  cell.core.enqueueInternal(cell.id, {
    kind: "task-failed",
    taskId: id,
    error: { code: AGENT_ERRORS.TASK_CANCELLED, message: "task cancelled" },
    origin: task.origin,
  });
  return true;
}

export function listTasks(cell: AgentCell): TaskInfo[] {
  return [...cell.tasks.values()].filter((t) => !t.finished).map((t) => t.info);
}
