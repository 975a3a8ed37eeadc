import fs from "node:fs";
import type { AgentClass } from "./agent.ts";
import { AgentCell } from "./cell.ts";
import { AGENT_ERRORS } from "./errors.ts";
import type { AgentEvent, EventOutcome, QueuedEvent } from "./events/types.ts";
import { isValidAgentId } from "./ids.ts";
import type { Runtime } from "./runtime.ts";
import { dropHeldEvents } from "./runtime-alarms.ts";
import { scheduleCap } from "./runtime-hibernation.ts";

// The registry of the Runtime (runtime.ts): the agents in memory by id (get-or-create, the LRU tick), the way runtime
// events reach them, and an agent leaving for good. Functions taking the runtime, like cell-batch.ts does for the
// cell, so the runtime's file stays its host API; when an agent leaves memory is runtime-hibernation.ts.

const noop = () => {};

function classFor(rt: Runtime, id: string): AgentClass {
  for (const c of rt.classes) if (c.re.test(id)) return c.cls;
  return rt.defaultClass;
}

/**
 * Get-or-create; touching makes the agent the most recently used. The LRU order is a tick per cell, not the Map's
 * order: moving an entry to the Map's end on every event left deleted slots at its front that every walk from the
 * front (the idle timer's) stepped over, a cost per event that grew with the number of active agents.
 */
export function cellFor(rt: Runtime, id: string): AgentCell {
  let cell = rt.cells.get(id);
  if (cell === undefined) {
    cell = new AgentCell(id, classFor(rt, id), rt.core);
    rt.cells.set(id, cell);
    scheduleCap(rt);
  }
  cell.lruTick = ++rt.lruTick;
  return cell;
}

/** One event for an agent, waking it; resolves with the event's outcome. */
export function runEvent(rt: Runtime, agentId: string, event: AgentEvent, user: boolean): Promise<EventOutcome> {
  if (rt.closed) return Promise.resolve({ status: "failed", code: AGENT_ERRORS.RUNTIME_CLOSED, message: "closed" });
  const cell = cellFor(rt, agentId);
  return new Promise((resolve) => cell.enqueue({ event, user, resolve }));
}

/** RuntimeCore.enqueueInternal: a runtime event (alarm, task result) that nobody awaits. */
export function enqueueInternal(
  rt: Runtime,
  agentId: string,
  event: AgentEvent,
  resolve: (outcome: EventOutcome) => void = noop,
): void {
  if (rt.closed || !isValidAgentId(agentId)) return;
  if (rt.closing && event.kind !== "wake") return;
  cellFor(rt, agentId).enqueue({ event, user: false, resolve });
}

/**
 * RuntimeCore.reroute: an event that reached a closed cell runs in the agent's current cell. Still while shutdown
 * drains: the only cell that closes with events queued then is one whose instance was retired (a callback timed out
 * while the shutdown waited for it), and what waited behind the callback was accepted before the shutdown, so it is
 * drained on a fresh instance like any other mailbox (the shutdown's rounds wait for that cell too). A bare wake
 * (the shutdown's own, which only waits for the drain) carries no work: it wakes no fresh instance then.
 */
export function reroute(rt: Runtime, agentId: string, item: QueuedEvent): void {
  if (rt.closed || (rt.closing && item.event.kind === "wake")) {
    item.resolve({ status: "failed", code: AGENT_ERRORS.RUNTIME_CLOSED, message: "runtime is shutting down" });
    return;
  }
  const stale = rt.cells.get(agentId);
  // A closed cell still in the registry would bounce the event back here forever.
  if (stale?.closed === true) rt.cells.delete(agentId);
  cellFor(rt, agentId).enqueue(item);
}

/**
 * RuntimeCore.destroyFiles: the agent leaves the registry, its connections, the alarm index and the disk. True when
 * there was anything of it to remove (in memory, connected, on disk or in runtime.db): the operator API tells a
 * removal from a miss by it. The observer hears of a hibernation only for an agent that was in memory: one asleep
 * (on disk, perhaps still connected) had nothing to leave memory, and bridge_agent_hibernations_total counts agents
 * that left it.
 */
export function destroyFiles(rt: Runtime, agentId: string): boolean {
  const inMemory = rt.cells.delete(agentId);
  let existed = inMemory;
  dropHeldEvents(rt, agentId);
  // An agent made again under this id starts with no backoff of the old one's onStart.
  rt.core.startBackoff.forget(agentId);
  for (const transport of rt.transports.take(agentId)) {
    existed = true;
    try {
      transport.close("agent destroyed", "destroyed");
    } catch {}
  }
  if (rt.alarms.forget(agentId)) existed = true;
  rt.core.directoryIndex.forget(agentId);
  // The path the cell opened and the closer keys its waiting close by (core.agentFile), so `settle` finds it.
  const file = rt.core.agentFile(agentId);
  // A close still waiting for an fsync ends now: the files go, so nothing of them has to reach the disk.
  rt.core.closer.settle(file, true);
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      fs.unlinkSync(f);
      if (f === file) {
        existed = true;
        rt.known = Math.max(0, rt.known - 1);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT")
        rt.core.logger.warn({ err, agent: agentId }, "unlink failed");
    }
  }
  if (inMemory) rt.core.observer.onHibernate?.({ agentId, reason: "destroy" });
  return existed;
}
