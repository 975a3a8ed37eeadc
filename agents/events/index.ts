import type { AgentCell } from "../cell.ts";
import { handleAlarm, handleQueueFlush } from "./alarm.ts";
import { handleCall } from "./call.ts";
import { handleClose } from "./close.ts";
import { handleHandover } from "./handover.ts";
import { handleMessage } from "./message.ts";
import { handleOpen } from "./open.ts";
import { handleStart } from "./start.ts";
import { handleTaskDone, handleTaskFailed, handleTaskProgress } from "./task.ts";
import type { AgentEvent } from "./types.ts";

/** Runs one mailbox event inside its savepoint. The one switch over event kinds. */
export function dispatchEvent(cell: AgentCell, event: AgentEvent): unknown {
  switch (event.kind) {
    case "start":
      return handleStart(cell, event.settledTasks);
    case "wake":
      return null;
    case "handover":
      return handleHandover(cell, event.errors, event.resync);
    case "open":
      return handleOpen(cell, event.init);
    case "message":
      return handleMessage(cell, event.connectionId, event.message);
    case "close":
      return handleClose(cell, event.connectionId, event.reason);
    case "call":
      return handleCall(cell, event.method, event.args);
    case "alarm":
      return handleAlarm(cell);
    case "queue":
      return handleQueueFlush(cell);
    case "task-progress":
      return handleTaskProgress(cell, event.taskId, event.batch);
    case "task-done":
      return handleTaskDone(cell, event.taskId, event.result, event.origin);
    case "task-failed":
      return handleTaskFailed(cell, event.taskId, event.error, event.origin);
    case "snapshot":
      // The drain runs a snapshot between batches (cell-snapshot.ts); one inside a batch would copy it half done.
      throw new Error("a snapshot event never runs inside a batch");
  }
}
