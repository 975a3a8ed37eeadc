import fs from "node:fs";
import path from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import { BridgeError } from "../errors/bridge-error.ts";
import { failure } from "./cell-batch.ts";
import { copyClosedAgentDatabase } from "./cell-snapshot.ts";
import { agentIdsIn } from "./data-dir.ts";
import { AGENT_ERRORS } from "./errors.ts";
import type { EventOutcome } from "./events/types.ts";
import type { Runtime } from "./runtime.ts";
import type { AgentWakeRows } from "./runtime-db.ts";
import { keepWakeRows } from "./snapshot-rows.ts";
import type { RuntimeBackupOptions, RuntimeBackupResult } from "./types.ts";

// A backup of the runtime's data (runtime.backup): every agent's database and runtime.db, each copied with VACUUM
// INTO by its owner (snapshot-db.ts). Functions taking the Runtime, like runtime-registry.ts.

/** How many agents' copies are in flight at once by default: a busy agent's mailbox delays only its own worker. */
export const BACKUP_CONCURRENCY = 4;

/**
 * Writes `<targetDir>/agents/<id>.db` for every agent database on disk, then `<targetDir>/runtime.db`: the layout of
 * the runtime's own data directory. An agent in memory is copied inside its actor, between two batches (a `snapshot`
 * event, cell-snapshot.ts); one hibernated is copied from its closed file by the runtime, which opens, copies and
 * closes it in one synchronous call, so its wake cannot race the copy and no agent is woken for a backup. runtime.db
 * goes last, with each agent's alarm and pending mark as they were at its copy joined in (snapshot-rows.ts): a row
 * gone since (a schedule that fired meanwhile) would leave the copy's schedule unfired, while an extra row costs a
 * wake that finds nothing to do. Rows of agents made after the list was read are dropped by the start of a restored
 * bridge (dropRowsOfMissingAgents).
 */
export async function backupRuntime(
  rt: Runtime,
  targetDir: string,
  options: RuntimeBackupOptions = {},
): Promise<RuntimeBackupResult> {
  refuseWhenClosing(rt);
  const concurrency = options.concurrency ?? BACKUP_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new BridgeError(AGENT_ERRORS.INVALID_OPTION, "backup concurrency must be an integer of 1 or more", {
      concurrency,
    });
  }
  const agentsOut = path.join(targetDir, "agents");
  fs.mkdirSync(agentsOut, { recursive: true, mode: 0o700 });
  const ids = agentIdsIn(rt.agentsDir);
  let next = 0;
  let agents = 0;
  const copied = new Map<string, number>();
  const wakeRows = new Map<string, AgentWakeRows>();
  const nextCopyTurn = turnByTurn();
  const worker = async (): Promise<void> => {
    while (next < ids.length) {
      await nextCopyTurn();
      refuseWhenClosing(rt);
      if (next >= ids.length) return;
      const id = ids[next++];
      const size = await snapshotAgent(rt, id, path.join(agentsOut, `${id}.db`), wakeRows);
      if (size === null) continue;
      agents++;
      copied.set(id, size);
      options.onAgent?.({ agentId: id, done: agents, total: ids.length });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, ids.length)) }, worker));
  refuseWhenClosing(rt);
  // An agent destroyed after its copy (its device removed) is left out, as one destroyed before it is: restored, its
  // data would come back to a device registered later under the same id. In the same synchronous step as the copy of
  // runtime.db, so the two agree on it.
  for (const id of copied.keys()) {
    if (fs.existsSync(rt.core.agentFile(id))) continue;
    fs.rmSync(path.join(agentsOut, `${id}.db`));
    copied.delete(id);
    wakeRows.delete(id);
  }
  let bytes = 0;
  for (const size of copied.values()) bytes += size;
  const runtimeCopy = path.join(targetDir, "runtime.db");
  rt.core.db.vacuumInto(runtimeCopy);
  keepWakeRows(runtimeCopy, wakeRows, rt.core.storage.lockingMode);
  bytes += fs.statSync(runtimeCopy).size;
  return { agents: copied.size, bytes };
}

/**
 * Copies one agent's database into `into`; its size, or null when the agent was destroyed since it was listed. The
 * agent's wake rows in runtime.db at that instant go into `wakeRows` (snapshot-rows.ts).
 */
async function snapshotAgent(
  rt: Runtime,
  id: string,
  into: string,
  wakeRows: Map<string, AgentWakeRows>,
): Promise<number | null> {
  const cell = rt.cells.get(id);
  if (cell === undefined || cell.closed) {
    const size = copyClosedAgentDatabase(rt.core, rt.core.agentFile(id), into, `the database of agent ${id}`);
    if (size !== null) wakeRows.set(id, rt.core.db.wakeRowsOf(id));
    return size;
  }
  const outcome = await new Promise<EventOutcome>((resolve) =>
    cell.enqueue({
      event: { kind: "snapshot", into },
      user: false,
      // Called by the drain right after the copy, before the agent's next batch can change its rows.
      resolve: (o) => {
        try {
          if (o.status === "committed" && o.value !== null) wakeRows.set(id, rt.core.db.wakeRowsOf(id));
          resolve(o);
        } catch (err) {
          resolve(failure(err));
        }
      },
    }),
  );
  if (outcome.status === "failed") {
    // Destroyed while its copy waited: like a file gone, not a failed backup.
    if (outcome.code === AGENT_ERRORS.AGENT_DESTROYED) return null;
    throw new BridgeError(outcome.code, outcome.message, { agent: id });
  }
  return outcome.value as number | null;
}

/**
 * Each copy holds the event loop (VACUUM INTO is synchronous), so copies go one per turn of the loop, whichever worker
 * asks: devices' traffic is served between any two of them. Without it an in-memory agent's copy (a mailbox event,
 * settled in a microtask) let its worker start the next one in the same turn, and the workers resumed together: a
 * benchmark saw 100 in-memory copies run as one 379 ms stall (docs/benchmarks.md, "Backup").
 */
function turnByTurn(): () => Promise<void> {
  let last: Promise<void> | undefined;
  return () => {
    // The first copy starts at once: the backup's place among the agents' events is where it was asked for.
    const mine = last === undefined ? Promise.resolve() : last.then(() => nextTurn());
    last = mine;
    return mine;
  };
}

function refuseWhenClosing(rt: Runtime): void {
  if (rt.closing || rt.closed) {
    throw new BridgeError(AGENT_ERRORS.RUNTIME_CLOSED, "the runtime is shutting down: the backup was not finished", {});
  }
}
