import fs from "node:fs";
import { performance } from "node:perf_hooks";
import type { Value } from "../codecs/frames.ts";
import { constructAgent } from "./agent.ts";
import { entryOfClass } from "./agent-config-check.ts";
import type { AgentCell } from "./cell.ts";
import { clearPendingOnLeave } from "./cell-after-batch.ts";
import { evacuate, releaseCapacityWaiters, settleEvent } from "./cell-mailbox.ts";
import { directoryPut } from "./cell-state.ts";
import { AGENT_ERRORS } from "./errors.ts";
import { tellAgent } from "./cell-scope.ts";
import { assertWritable } from "./readonly-guard.ts";
import { joinHandoverErrors, liveCell, takeHandover } from "./retirement.ts";
import { readStateChunks } from "./state-store.ts";
import { abandonTasks } from "./tasks.ts";
import { SqlRunner } from "./sql-runner.ts";
import { openAgentDatabase } from "./storage.ts";
import { decodeValue } from "./value-codec.ts";

// The lifecycle of AgentCell (cell.ts): waking (database, state, agent object), hibernating, destroying, and failing
// what is queued at shutdown. When the runtime hibernates a cell is its policy (runtime-hibernation.ts); this is
// what hibernating does to the cell. Functions taking the cell, like cell-batch.ts.

/** Opens the agent's database, loads its state and constructs the agent object (the drain's first batch). */
export function wakeCell(cell: AgentCell): void {
  const t0 = performance.now();
  const core = cell.core;
  const file = core.agentFile(cell.id);
  // Its handle from an earlier hibernation may still wait for an fsync: closed first, so one handle is open at a time.
  core.closer.settle(file);
  const existed = fs.existsSync(file);
  const sql = new SqlRunner(openAgentDatabase(file, core.storage));
  if (!existed) core.noteCreated();
  try {
    loadAgent(cell, sql);
  } catch (err) {
    // Half awake (a handle without an agent) every later event would fail on the missing object, and an alarm would
    // spend its schedules' attempts on it: the cell stays asleep, so the next event tries the whole wake again.
    cell.sql = null;
    cell.agent = null;
    sql.close();
    throw err;
  }
  core.observer.onWake?.({ agentId: cell.id, durationMs: performance.now() - t0 });
}

/** Loads the state and constructs the agent object on an opened database (a constructor may already use it). */
function loadAgent(cell: AgentCell, sql: SqlRunner): void {
  const core = cell.core;
  // The instance this env is for (null while its constructor runs): kept by an instance dropped since (abandonBatch),
  // the env must not write through the fresh instance's database either.
  let instance: AgentCell["agent"] = null;
  cell.sql = sql;
  const stored = readStateChunks(sql);
  cell.state = stored === null ? undefined : decodeValue(stored.bytes);
  cell.stateChunks = stored?.chunks ?? 0;
  const env = {
    clock: core.clock,
    random: core.random,
    engine: core.engine,
    logger: core.logger.child({ agent: cell.id }),
    config: entryOfClass(core.agentConfig, cell.cls.name) ?? {},
    wiring: entryOfClass(core.agentWiring, cell.cls.name) ?? {},
    directory: {
      // Through liveCell like the agent's own API: a retired instance's env must not write either (retirement.ts).
      put: (kind: string, key: string, value: Value | null) => {
        const live = liveCell(cell);
        if (live.agent !== instance) throw live.notInMemory();
        assertWritable(live, "directory.put");
        directoryPut(live, kind, key, value);
      },
      list: (kind: string) => core.listDirectory(kind),
    },
  };
  instance = constructAgent(cell.cls, { id: cell.id, env, cell });
  cell.agent = instance;
}

/** AgentCell.hibernate: releases the object and DB handle (hibernation or shutdown); connections stay with the host. */
export function hibernate(cell: AgentCell): void {
  if (cell.closed) return;
  // While the database is still open: the check reads the agent's queue and task rows.
  clearPendingOnLeave(cell);
  cell.closed = true;
  if (cell.sql !== null) cell.core.closer.close(cell.core.agentFile(cell.id), cell.sql);
  cell.sql = null;
  cell.agent = null;
  cell.connections.clear();
  // Nothing may wait on a closed cell: a running drain hands its rest on when it stops (see drain).
  if (!cell.running) evacuate(cell);
  else releaseCapacityWaiters(cell);
}

/**
 * The cell's agent instance was retired (a callback ran past callbackTimeoutMs, retirement.ts) and its batch has
 * committed: the cell leaves memory as in hibernation, and what waits in its mailbox runs on a fresh instance woken
 * from the database (onStart first). Its running tasks are aborted but keep their rows, so the next instance hears of
 * them through onTaskInterrupted, as after a restart: their code may hold the retired instance, which refuses it.
 * Called by the drain that ran the batch, so the mailbox is handed on (evacuated) once that drain stops.
 */
export function retireCell(cell: AgentCell): void {
  abandonTasks(cell, cell.retired);
  const handover = takeHandover(cell);
  // The fresh instance starts now, not at the device's next message: it hears of the interrupted tasks, and its
  // connections and schedules are live again at once. While the runtime shuts down, one starts only for events that
  // waited behind the callback (the shutdown's own wake carries no work, runtime-registry.ts, reroute); with none,
  // the retired instance's onError is told, as no instance follows it.
  const successor = !cell.core.closing || cell.mailbox.some((item) => item.event.kind !== "wake");
  if (!successor && handover !== null) for (const e of handover.errors) tellAgent(cell, e.err, e.event);
  hibernate(cell);
  cell.core.observer.onHibernate?.({ agentId: cell.id, reason: "retired" });
  if (!successor) return;
  // At the front: the fresh instance acts on the handover (its first event after onStart) before the events that
  // waited. It also wakes the instance, in place of a bare wake. An instance retired before the handover it was given
  // ran (in its own start: onStart hung) handed that one back to the front: the two become one, the earlier failures
  // first, so onError hears them in the order they happened and a start that hangs every time piles up nothing.
  const errors = handover?.errors ?? [];
  const resync = [...(handover?.resync ?? [])];
  const waiting = cell.mailbox[0]?.event;
  if (waiting?.kind === "handover") {
    const event = {
      kind: "handover",
      errors: joinHandoverErrors(waiting.errors, errors),
      resync: [...new Set([...waiting.resync, ...resync])],
    } as const;
    cell.mailbox[0] = { event, user: false, resolve: () => {} };
    return;
  }
  cell.mailbox.unshift({ event: { kind: "handover", errors, resync }, user: false, resolve: () => {} });
}

/** AgentCell.requestDestroy: destroys the agent once its drain stops (at once when none runs). */
export function requestDestroy(cell: AgentCell): Promise<void> {
  if (cell.pendingDestroy !== null) return cell.pendingDestroy.promise;
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  cell.pendingDestroy = { promise, resolve };
  if (!cell.running) finishDestroy(cell);
  return promise;
}

export function finishDestroy(cell: AgentCell): void {
  const pending = cell.pendingDestroy!;
  // Failures a retired instance left for a successor (retirement.ts): a destroyed agent has none, so its own onError
  // hears of them, as before it was retired.
  const handover = takeHandover(cell);
  if (handover !== null) for (const e of handover.errors) tellAgent(cell, e.err, e.event);
  abandonTasks(cell);
  for (const item of cell.mailbox.splice(0)) {
    settleEvent(cell, item, { status: "failed", code: AGENT_ERRORS.AGENT_DESTROYED, message: "agent destroyed" });
  }
  cell.userDepth = 0;
  hibernate(cell);
  try {
    cell.core.destroyFiles(cell.id);
  } finally {
    pending.resolve();
  }
}

/** AgentCell.failAll: fails every queued event (shutdown of a cell that cannot run). */
export function failAll(cell: AgentCell, code: string, message: string): void {
  for (const item of cell.mailbox.splice(0)) settleEvent(cell, item, { status: "failed", code, message });
  cell.userDepth = 0;
  releaseCapacityWaiters(cell);
}
