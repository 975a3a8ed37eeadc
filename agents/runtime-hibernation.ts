import type { AgentCell } from "./cell.ts";
import { MAX_TIMER_MS } from "./clock.ts";
import type { Runtime } from "./runtime.ts";

// When agents leave memory (the policy; what leaving does to a cell is cell-lifecycle.ts, hibernate): the least
// recently used idle agents while more than maxActiveAgents are in memory, and any agent idle for idleTimeoutMs.
// Functions taking the Runtime (runtime.ts), like cell-batch.ts does for the cell.

/**
 * Eviction runs on a later turn of the event loop, never inside cellFor: closing a database is a WAL checkpoint that
 * must stay off the arriving event's path, and by then the caller has enqueued into the new cell, so it is not idle
 * and cannot be evicted before its event ran (the LRU hang fixed in 566a33b).
 */
export function scheduleCap(rt: Runtime): void {
  if (rt.cells.size <= rt.opts.maxActiveAgents || rt.capPending) return;
  rt.capPending = true;
  setImmediate(() => {
    rt.capPending = false;
    if (!rt.closing) enforceCap(rt);
  });
}

function evict(rt: Runtime, cell: AgentCell, reason: "idle" | "lru"): void {
  cell.hibernate();
  rt.cells.delete(cell.id);
  rt.core.observer.onHibernate?.({ agentId: cell.id, reason });
}

/** Least recently used idle agents leave memory while more than maxActiveAgents are in it. */
function enforceCap(rt: Runtime): void {
  const excess = rt.cells.size - rt.opts.maxActiveAgents;
  if (excess <= 0) return;
  const idle: AgentCell[] = [];
  for (const cell of rt.cells.values()) if (cell.idle) idle.push(cell);
  if (idle.length === 0) return;
  if (excess === 1) {
    let lru = idle[0];
    for (const cell of idle) if (cell.lruTick < lru.lruTick) lru = cell;
    evict(rt, lru, "lru");
    return;
  }
  idle.sort((a, b) => a.lruTick - b.lruTick);
  for (const cell of idle.slice(0, excess)) evict(rt, cell, "lru");
}

/** RuntimeCore.cellIdle: a cell's drain stopped. */
export function cellIdle(rt: Runtime, _id: string): void {
  if (rt.closing) return;
  enforceCap(rt);
  armIdleTimer(rt);
}

export function clearIdleTimer(rt: Runtime): void {
  if (rt.idleTimer !== null) rt.core.clock.clearTimeout(rt.idleTimer);
  rt.idleTimer = null;
}

/**
 * One timer for the whole registry, at the moment the earliest agent turns idle-expired. An armed timer stays: it
 * is due no later than any agent active since (their expiry is at least now + idleTimeoutMs), so the walk over
 * every agent runs only when no timer is armed, not after every event.
 */
function armIdleTimer(rt: Runtime): void {
  if (rt.idleTimer !== null) return;
  if (rt.cells.size === 0) {
    clearIdleTimer(rt);
    return;
  }
  armIdleTimerAt(rt, rt.core.clock.monotonicNow());
}

function sweepIdle(rt: Runtime): void {
  if (rt.closing) return;
  const now = rt.core.clock.monotonicNow();
  let waiting = false;
  for (const cell of [...rt.cells.values()]) {
    if (cell.lastActiveMs + rt.opts.idleTimeoutMs > now) {
      waiting = true;
      continue;
    }
    if (cell.idle) evict(rt, cell, "idle");
    else waiting = true;
  }
  if (waiting) armIdleTimerAt(rt, now);
}

function armIdleTimerAt(rt: Runtime, now: number): void {
  let earliest = Number.POSITIVE_INFINITY;
  for (const cell of rt.cells.values()) earliest = Math.min(earliest, cell.lastActiveMs + rt.opts.idleTimeoutMs);
  if (earliest === Number.POSITIVE_INFINITY) return;
  // A busy agent past its timeout is looked at again one timeout later rather than in a tight loop.
  const at = earliest <= now ? now + rt.opts.idleTimeoutMs : earliest;
  // Node fires a longer timer after 1 ms; a capped one finds nobody expired yet and is armed again.
  const delay = Math.min(MAX_TIMER_MS, at - now);
  rt.idleTimer = rt.core.clock.setTimeout(() => {
    rt.idleTimer = null;
    sweepIdle(rt);
  }, delay);
}
