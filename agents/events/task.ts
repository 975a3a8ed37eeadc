import type { Value } from "../../codecs/frames.ts";
import type { AgentCell } from "../cell.ts";
import type { TaskInfo } from "../types.ts";
import type { ProgressBatch } from "./types.ts";
import { decodeValue } from "../value-codec.ts";

function taskRow(cell: AgentCell, taskId: string): TaskInfo | undefined {
  const row = cell
    .sqlRunner()
    .get<{ id: string; kind: string; input: Uint8Array | null; started_at: number }>(
      "SELECT * FROM _bridge_tasks WHERE id = ?",
      taskId,
    );
  return row === undefined
    ? undefined
    : { id: row.id, kind: row.kind, input: decodeValue(row.input), startedAt: row.started_at };
}

/**
 * Hands a task's coalesced progress to onTaskProgress, one call per update in the order they were reported. A hook
 * that throws fails the whole event (its writes and frames roll back), as one update's event did before coalescing.
 */
export async function handleTaskProgress(cell: AgentCell, taskId: string, batch: ProgressBatch): Promise<null> {
  batch.taken = true;
  const info = taskRow(cell, taskId);
  if (info === undefined) return null;
  const agent = cell.agent!;
  for (const update of batch.updates) {
    // Sync hooks (the DeviceAgent's) skip the await: one microtask less per streamed chunk.
    const r = agent.onTaskProgress(info, update);
    if (r instanceof Promise) await r;
  }
  return null;
}

/** The outcome hooks run in their own savepoint: the task row is removed even when the hook throws. */
async function finish(cell: AgentCell, taskId: string, hook: (info: TaskInfo) => void | Promise<void>, name: string) {
  const info = taskRow(cell, taskId);
  if (info === undefined) return;
  try {
    await cell.nestedAsync(async () => hook(info));
  } catch (err) {
    cell.reportError(err, name);
  }
  cell.sqlRunner().run("DELETE FROM _bridge_tasks WHERE id = ?", taskId);
}

export async function handleTaskDone(cell: AgentCell, taskId: string, result: Value): Promise<null> {
  await finish(cell, taskId, (info) => cell.agent!.onTaskDone(info, result), "onTaskDone");
  return null;
}

export async function handleTaskFailed(
  cell: AgentCell,
  taskId: string,
  error: { code: string; message: string },
): Promise<null> {
  await finish(cell, taskId, (info) => cell.agent!.onTaskFailed(info, error), "onTaskFailed");
  return null;
}
