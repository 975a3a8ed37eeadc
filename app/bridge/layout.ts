/** Where the bridge keeps things inside its data directory; shared by the bridge and the `devices` CLI. */
import path from "node:path";

/** The device registry (SQLite, WAL; shared by the running bridge and the CLI). */
export const REGISTRY_FILE = "registry.db";
/** The agent runtime's data directory: its `runtime.db` and `agents/<id>.db`, one database per agent. */
export const AGENTS_DIR = "agents";

/**
 * The database file of agent `id` (a valid agent id): the runtime keeps one per agent in `agents/` under its own data
 * directory, which is `AGENTS_DIR` (docs/agents.md). Only looked at, to tell an operator that data is left; removing
 * it is the runtime's job (`destroyAgent`), which knows the rest of an agent's data.
 */
export function agentDatabaseFile(dataDir: string, id: string): string {
  return path.join(dataDir, AGENTS_DIR, "agents", `${id}.db`);
}
