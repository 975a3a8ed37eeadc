import fs from "node:fs";
import path from "node:path";
import { BridgeError } from "../errors/bridge-error.ts";
import { AGENT_ERRORS } from "./errors.ts";
import { isValidAgentId } from "./ids.ts";
import type { Runtime } from "./runtime.ts";
import { runEvent } from "./runtime-registry.ts";

/** How many of the dropped agents' ids the start's log line names (the count is always there). */
const DROPPED_IDS_LOGGED = 10;

/**
 * The most agents `start()` wakes at once. Each wake opens a database, and an agent whose onStart (or whose wake's
 * queue flush) awaits stays in memory until it ends, where the cap cannot evict it: woken all together, thousands of
 * pending agents held thousands of databases open past `maxActiveAgents` at a restart.
 */
export const START_WAKE_CONCURRENCY = 64;

/**
 * Wakes `ids` (agents marked pending at the last stop), at most `limit` at a time; resolves when all have woken, or
 * once a shutdown began and the wakes in flight ended. A shutdown waits only for the cells busy as each of its rounds
 * begins: waking on, the start handed it a new cell as each wake ended, and past its last round (about 6,400 pending
 * agents at 64 at a time) it closed the latest ones in the middle of their onStart. Those not woken keep their
 * pending mark, so the next start wakes them.
 */
export async function wakePendingAgents(rt: Runtime, ids: readonly string[], limit: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ids.length && !rt.closing) {
      const id = ids[next++];
      await runEvent(rt, id, { kind: "wake" }, false);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, ids.length)) }, worker));
}

/**
 * Drops the runtime.db rows (next alarm, pending mark, directory entries) of agents whose database file is gone, before
 * start arms the alarms and wakes the pending agents; logs once, with their count. Such rows are left by a destroy
 * whose delete runtime.db refused (a storage fault) when the process ended before the retry landed (alarm-rows.ts),
 * or by a runtime.db restored from a backup. Left, they woke each such agent at start, which made it again: a fresh
 * empty database for a destroyed agent, its directory entries listed for the fleet. An agent's rows are written only
 * while its database exists (a wake opens the file before any event runs), so an agent without its file has no
 * business in runtime.db; one whose file exists is left alone. A delete runtime.db refuses here is tried again later,
 * as the destroy's was: the rows are out of memory already, so nothing wakes the agent meanwhile. Returns how many
 * agents' rows were dropped.
 *
 * Unless `dropMissingAgentRows` is set, it refuses (BRIDGE_ERR_STORAGE naming the folder, nothing changed) when more
 * than half the agents runtime.db lists have no database: such a folder is more likely not the agents folder at all
 * (a volume not mounted yet leaves an empty folder at its mount point) than a fleet destroyed in one go, and dropping
 * their rows would lose every agent's alarm and pending mark once the volume is back. Rows of ids that are no valid
 * agent id never had a database: they are dropped and not counted.
 */
export function dropRowsOfMissingAgents(rt: Runtime): number {
  const ids = rt.core.db.agentIdsWithRows();
  if (ids.length === 0) return 0;
  const files = new Set(fs.readdirSync(rt.agentsDir));
  const dropped: string[] = [];
  let agents = 0;
  let missing = 0;
  for (const id of ids) {
    const valid = isValidAgentId(id);
    if (valid) agents++;
    if (valid && (files.has(`${id}.db`) || fs.existsSync(path.join(rt.agentsDir, `${id}.db`)))) continue;
    if (valid) missing++;
    dropped.push(id);
  }
  if (!rt.opts.dropMissingAgentRows && missing * 2 > agents) refuseMostMissing(rt.agentsDir, agents, missing, dropped);
  for (const id of dropped) rt.alarms.forget(id);
  if (dropped.length > 0) {
    rt.core.logger.warn(
      { agents: dropped.length, ids: dropped.slice(0, DROPPED_IDS_LOGGED) },
      "runtime.db held alarms, pending marks or directory entries of agents whose database is gone (destroyed " +
        "before the last stop); dropped without waking them",
    );
  }
  return dropped.length;
}

function refuseMostMissing(agentsDir: string, agents: number, missing: number, ids: readonly string[]): never {
  throw new BridgeError(
    AGENT_ERRORS.STORAGE,
    `${missing} of the ${agents} agents runtime.db lists have no database in ${agentsDir}: is that the agents ` +
      "folder, and is its volume mounted? Nothing was changed. If those agents are really gone, start once with " +
      "dropMissingAgentRows (agent-bridge: --drop-missing-agent-rows) to drop their alarms, pending marks and " +
      "directory entries",
    { path: agentsDir, agents, missing, ids: ids.slice(0, DROPPED_IDS_LOGGED) },
  );
}
