import type { Value } from "../codecs/frames.ts";
import type { AgentCell } from "./cell.ts";
import { BridgeError } from "../errors/index.ts";
import type { AgentEvent, ProgressBatch, TaskOrigin } from "./events/types.ts";
import { AGENT_ERRORS, errorCode, errorMessage } from "./errors.ts";
import { randomId } from "./ids.ts";
import type { TaskContext, TaskInfo, TaskOptions } from "./types.ts";
import { encodeValue } from "./value-codec.ts";

/** What a task reports to its agent's mailbox. */
type InternalTaskEvent = Extract<AgentEvent, { kind: "task-progress" | "task-done" | "task-failed" }>;

/**
 * A background task in memory. `finished` once its outcome was reported (or it was cancelled); a finished task stays
 * in the cell's tasks only while its starting event has not committed (see forget).
 */
export interface RunningTask {
  info: TaskInfo;
  controller: AbortController;
  finished: boolean;
  /** The task's progress event still waiting in the mailbox, which later updates join (at most one per task). */
  progress: ProgressBatch | null;
  /** The row as written, carried by the task's events so they need no SELECT of it (agents/events/task.ts). */
  origin: TaskOrigin;
  /**
   * Events the task reported (or a `cancelTask` made for it) before the event that started it committed; null once
   * it has (then they go to the mailbox at once) or rolled back (then they are dropped). Held so that no report of a
   * task can run before its row exists, nor for a row that was rolled back.
   */
  held: InternalTaskEvent[] | null;
}

/**
 * Starts background work. The task row is written in the current event, and `run` starts only after that event
 * commits (a rolled-back event starts nothing). Progress and the outcome come back as mailbox events, so the task
 * never holds the mailbox and never races the agent's own events. The row stays until the outcome event ran, so a
 * task cut off by a restart reaches onTaskInterrupted.
 *
 * `eager` starts `run` at once, inside the event, so that its first I/O (an engine request) is on its way while the
 * event's writes commit. Its reports are held until the commit; if the event rolls back, the task's signal aborts
 * and whatever it reports is dropped. Only for work that is safe to abandon half-started. Its row is written after
 * the launch, when the scope that started it ends (the event, a transaction(), a write outside events: see
 * AgentCell.deferWrite), inside that scope's transaction: still before the commit, so recovery sees it, and a failure
 * to write it fails that scope, which aborts the task as its rollback. Its input is encoded then too (the input as it
 * is at the scope's end; one that cannot be stored fails the scope the same way). An event that awaits the I/O's
 * departure before it ends (the DeviceAgent's question: after-request-write.ts) thus writes the row after the engine
 * request left, instead of a lazy BEGIN and a cold INSERT before it (issue #5).
 */
export function startTask(
  cell: AgentCell,
  kind: string,
  input: Value,
  run: (task: TaskContext) => Promise<Value>,
  options: TaskOptions = {},
): string {
  const id = randomId(cell.core.random);
  const info: TaskInfo = { id, kind, input, startedAt: cell.core.clock.now() };
  const eager = options.eager === true;
  const handle = cell.sqlRunner();
  // A task's input is encoded now, so one that cannot be stored throws here, before anything ran; an eager task's with
  // its row, after its launch (its first I/O does not wait for it), where a refusal fails the scope like a refused row.
  const origin: TaskOrigin = {
    id,
    kind,
    input: eager ? NOT_ENCODED : storedCopy(input),
    startedAt: info.startedAt,
    handle,
  };
  const writeRow = (): void => {
    if (eager) origin.input = storedCopy(input);
    handle.run(
      "INSERT INTO _bridge_tasks (id, kind, input, started_at) VALUES (?, ?, ?, ?)",
      id,
      kind,
      origin.input,
      info.startedAt,
    );
    cell.core.alarms.markPending(cell.id);
  };
  cell.write(() => {
    if (!eager) writeRow();
    const task: RunningTask = {
      info,
      controller: new AbortController(),
      finished: false,
      progress: null,
      origin,
      held: [],
    };
    cell.tasks.set(id, task);
    cell.onUndo(() => dropUncommitted(cell, task));
    if (eager) {
      launch(cell, task, run, true);
      // A refused row fails the scope; its rollback runs the undo step above, which aborts the task.
      cell.deferWrite(writeRow);
      cell.output({ type: "action", run: () => goLive(cell, task) });
    } else {
      cell.output({
        type: "action",
        run: () => {
          goLive(cell, task);
          launch(cell, task, run, false);
        },
      });
    }
  });
  return id;
}

/** An eager task's input until its row is written (its events, held until the commit, never see it). */
const NOT_ENCODED = new Uint8Array(0);

/** A task's input as its row stores it: a copy, as the encoder's output may share its buffer with later encodings. */
function storedCopy(input: Value): Uint8Array {
  return Uint8Array.from(encodeValue(input));
}

/**
 * The batch now running was abandoned (a storage fault outside any handler: its transaction rolled back without its
 * events' undo steps): every task an event of it started is dropped as a rollback would.
 */
export function dropUncommittedTasks(cell: AgentCell): void {
  for (const task of [...cell.tasks.values()]) if (task.held !== null) dropUncommitted(cell, task);
}

/** The event that started `task` rolled back: the task is gone, its signal aborts, what it reported is dropped. */
function dropUncommitted(cell: AgentCell, task: RunningTask): void {
  cell.tasks.delete(task.info.id);
  task.finished = true;
  task.held = null;
  task.controller.abort(new BridgeError(AGENT_ERRORS.TASK_CANCELLED, "the event that started the task rolled back"));
}

/** The event that started a task committed: what the task reported meanwhile goes to the mailbox, in order. */
function goLive(cell: AgentCell, task: RunningTask): void {
  const held = task.held;
  task.held = null;
  // A task that ended before its row committed stayed listed until now (see forget).
  if (task.finished) cell.tasks.delete(task.info.id);
  if (held === null || cell.core.closing) return;
  for (const event of held) cell.core.enqueueInternal(cell.id, event);
}

/**
 * A task ended (its outcome reported, or cancelled): it leaves the cell's tasks, unless its starting event has not
 * committed yet. Until then it stays, finished, so that the event sees its row as a live task's: the start event,
 * which reports every task row without a task in memory as interrupted, would report an eager task started in onStart
 * that had already ended.
 */
function forget(cell: AgentCell, task: RunningTask): void {
  if (task.held === null) cell.tasks.delete(task.info.id);
}

/** Hands a task's report to the mailbox, or holds it while the task's starting event has not committed. */
function report(cell: AgentCell, task: RunningTask, event: InternalTaskEvent): void {
  if (task.held !== null) task.held.push(event);
  else cell.core.enqueueInternal(cell.id, event);
}

function launch(cell: AgentCell, task: RunningTask, run: (task: TaskContext) => Promise<Value>, eager: boolean): void {
  const core = cell.core;
  // Not while the runtime shuts down (an event its drain runs started the task): whatever the task reported would be
  // dropped, and the shutdown aborted the running tasks before that drain, so nothing would ever abort this one. Its
  // row stays, and the next start reports it through onTaskInterrupted.
  if (task.finished || core.closing) return;
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
      report(cell, task, { kind: "task-progress", taskId, batch });
    },
  };
  const settle = (outcome: { ok: true; result: Value } | { ok: false; err: unknown }) => {
    // After shutdown began the row stays, so the next start reports the task as interrupted.
    if (task.finished || core.closing) return;
    task.finished = true;
    forget(cell, task);
    if (outcome.ok) {
      report(cell, task, { kind: "task-done", taskId, result: outcome.result ?? null, origin: task.origin });
    } else {
      const error = { code: errorCode(outcome.err), message: errorMessage(outcome.err) };
      if (error.code === AGENT_ERRORS.HANDLER_FAILED) error.code = AGENT_ERRORS.TASK_FAILED;
      report(cell, task, { kind: "task-failed", taskId, error, origin: task.origin });
    }
  };
  const follow = (started: Promise<Value>) =>
    started.then(
      (result) => settle({ ok: true, result }),
      (err: unknown) => settle({ ok: false, err }),
    );
  // An eager task runs its synchronous start now, inside its event. Any other starts on a microtask, after the
  // outputs released with it, unless it was finished in between: the same turn may retire its agent instance (a later
  // event of its batch timed out), shut the runtime down or run a later event that cancels it. Its body would start
  // with an aborted signal and run its first I/O all the same, for an instance that can no longer hear of it.
  if (eager) follow(startNow(run, ctx));
  else
    void Promise.resolve().then(() => {
      if (!task.finished && !core.closing) follow(startNow(run, ctx));
    });
}

/** Calls `run` now; a synchronous throw becomes a rejection, as it would be from an async function. */
function startNow(run: (task: TaskContext) => Promise<Value>, ctx: TaskContext): Promise<Value> {
  try {
    return Promise.resolve(run(ctx));
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * The cell's tasks are cut off as its agent leaves memory with them running (its instance retired, the agent
 * destroyed, the runtime shutting down): each is aborted with `reason` (the signal's default AbortError when none)
 * and finished first, so that nothing it still reports reaches an agent: a retired instance's successor would hear of
 * it twice, a destroyed agent would be made again. Their rows stay (unless the agent is destroyed), so the next start
 * reports them through onTaskInterrupted.
 */
export function abandonTasks(cell: AgentCell, reason?: unknown): void {
  for (const task of cell.tasks.values()) {
    task.finished = true;
    task.controller.abort(reason);
  }
  cell.tasks.clear();
}

/** Aborts a running task; onTaskFailed then gets BRIDGE_ERR_TASK_CANCELLED. False when no such task runs. */
export function cancelTask(cell: AgentCell, id: string): boolean {
  const task = cell.tasks.get(id);
  if (task === undefined || task.finished) return false;
  task.finished = true;
  forget(cell, task);
  task.controller.abort();
  report(cell, task, {
    kind: "task-failed",
    taskId: id,
    error: { code: AGENT_ERRORS.TASK_CANCELLED, message: "task cancelled" },
    origin: task.origin,
  });
  return true;
}

/**
 * Whether task `id` has an outcome to come (Agent.hasTask): in the cell's tasks (running, or ended before its
 * starting event committed), or ended with its report in the mailbox, whose row stays until that report's hook ran.
 * The start event removes the rows of tasks cut off by a stop as it reports them interrupted.
 */
export function hasTask(cell: AgentCell, id: string): boolean {
  if (cell.tasks.has(id)) return true;
  return cell.sqlRunner().get("SELECT 1 FROM _bridge_tasks WHERE id = ?", id) !== undefined;
}

export function listTasks(cell: AgentCell): TaskInfo[] {
  return [...cell.tasks.values()].filter((t) => !t.finished).map((t) => t.info);
}
