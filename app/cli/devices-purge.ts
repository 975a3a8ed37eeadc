/**
 * `agent-bridge devices rm ID --purge`: removes the device's registry record and its agent's data (database, schedules,
 * queue, directory entries), as `DELETE /api/devices/:id` does on a running bridge. The agent's data belongs to the
 * bridge that holds the data directory (its databases are opened exclusively), so this runs only while no bridge does:
 * it holds the data directory's lock while it works (a bridge starting in that moment is refused, as by another
 * bridge). While a bridge runs, its API is the way, and the command says so.
 */
import fs from "node:fs";
import path from "node:path";
import type { DeviceRegistry } from "../../broker/registry/index.ts";
import { hasErrorCode } from "../../errors/index.ts";
import { acquireDataDirLock } from "../bridge/data-dir-lock.ts";
import { AGENTS_DIR } from "../bridge/layout.ts";

/** What a purge did, or why it did nothing. */
export type PurgeOutcome =
  | { status: "removed"; record: boolean; agentData: boolean }
  /** A bridge holds the data directory; nothing was removed. `message` names its pid. */
  | { status: "bridge-running"; message: string };

/**
 * Removes `id`'s registry record and its agent's data from `dataDir`, holding the data directory's lock meanwhile.
 * `record` and `agentData` say what there was; both false means the id had neither.
 */
export async function purgeDevice(dataDir: string, registry: DeviceRegistry, id: string): Promise<PurgeOutcome> {
  let lock: ReturnType<typeof acquireDataDirLock>;
  try {
    lock = acquireDataDirLock(dataDir);
  } catch (err) {
    if (hasErrorCode(err, "BRIDGE_ERR_DATA_DIR_LOCKED")) {
      return { status: "bridge-running", message: (err as Error).message };
    }
    throw err;
  }
  try {
    // The record first, as the API does: a bridge started right after this one cannot let the device in meanwhile.
    const record = registry.remove(id);
    const agentData = await destroyAgentData(path.join(dataDir, AGENTS_DIR), id);
    return { status: "removed", record, agentData };
  } finally {
    lock.release();
  }
}

/**
 * Destroys the agent through the agent runtime itself, so that what counts as an agent's data (its database files,
 * its rows in runtime.db) stays the runtime's business. The runtime is never started: no alarm fires, no agent wakes.
 */
async function destroyAgentData(runtimeDir: string, id: string): Promise<boolean> {
  // A data directory no bridge ever ran on has no agents: nothing to create there.
  if (!fs.existsSync(runtimeDir)) return false;
  // Loaded on use, like the registry: `--help` and the other commands never load the runtime.
  const { Agent, createRuntime } = await import("../../agents/index.ts");
  const { default: pino } = await import("pino");
  // Destroying never constructs an agent; the runtime wants a class all the same.
  class NeverConstructed extends Agent {}
  const runtime = createRuntime({
    dataDir: runtimeDir,
    defaultAgentClass: NeverConstructed,
    logger: pino({ level: "silent" }),
  });
  try {
    return await runtime.destroyAgent(id);
  } finally {
    await runtime.shutdown();
  }
}
