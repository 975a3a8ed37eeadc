import type { AgentCell } from "../cell.ts";
import { flushQueue } from "../queue.ts";
import { runDueSchedules } from "../schedules.ts";

/** The global alarm index woke this agent: run due schedules and due queue retries. */
export async function handleAlarm(cell: AgentCell): Promise<null> {
  await runDueSchedules(cell);
  await flushQueue(cell);
  cell.alarmDirty = true;
  return null;
}

/** Items were queued by an earlier event (or found on wake): run them. */
export async function handleQueueFlush(cell: AgentCell): Promise<null> {
  await flushQueue(cell);
  return null;
}
