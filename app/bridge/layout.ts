/** Where the bridge keeps things inside its data directory; shared by the bridge and the `devices` CLI. */

/** The device registry (SQLite, WAL; shared by the running bridge and the CLI). */
export const REGISTRY_FILE = "registry.db";
/** Folder of the agents' databases. */
export const AGENTS_DIR = "agents";
