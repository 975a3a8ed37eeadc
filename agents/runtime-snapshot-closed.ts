import fs from "node:fs";
import path from "node:path";
import { agentIdsIn } from "./data-dir.ts";
import { RUNTIME_DEFAULTS } from "./options.ts";
import { refuseNewerRuntimeDatabase } from "./runtime-db-open.ts";
import { snapshotClosedDatabase } from "./snapshot-db.ts";
import type { RuntimeBackupOptions, RuntimeBackupResult } from "./types.ts";

// A backup of a runtime data directory that no runtime has open (the CLI's backup with no bridge running): the files
// runtime.backup writes (runtime-snapshot.ts), each copied with VACUUM INTO through a connection of its own that runs
// no migration. Constructing a runtime for it would open runtime.db as a start does, migrating it to this build's
// schema: a newer build's backup taken before its first start would upgrade the live data directory, which the older
// build then refuses to open. Here an older file is copied as it is (a bridge started on the copy migrates it).

export interface ClosedRuntimeBackupOptions extends Pick<RuntimeBackupOptions, "onAgent"> {
  /** The runtime's locking mode (default RUNTIME_DEFAULTS.lockingMode): under EXCLUSIVE no `-shm` file is made. */
  lockingMode?: "EXCLUSIVE" | "NORMAL";
}

/**
 * Refuses a runtime data directory whose runtime.db a newer build wrote, with the error a start gives: call it before
 * anything is copied, so the backup stops as a start would. A directory without runtime.db passes.
 */
export function refuseNewerRuntimeDir(
  dataDir: string,
  lockingMode: "EXCLUSIVE" | "NORMAL" = RUNTIME_DEFAULTS.lockingMode,
): void {
  const file = path.join(dataDir, "runtime.db");
  if (fs.existsSync(file)) refuseNewerRuntimeDatabase(file, lockingMode);
}

/**
 * Writes `<targetDir>/agents/<id>.db` for every agent database in `dataDir`, then `<targetDir>/runtime.db` when the
 * source has one. No runtime may run on `dataDir` meanwhile (the caller holds its lock): nothing then moves between
 * the copies, so runtime.db's alarm and pending rows need none of the joining runtime.backup does.
 */
export async function backupClosedRuntime(
  dataDir: string,
  targetDir: string,
  options: ClosedRuntimeBackupOptions = {},
): Promise<RuntimeBackupResult> {
  const lockingMode = options.lockingMode ?? RUNTIME_DEFAULTS.lockingMode;
  refuseNewerRuntimeDir(dataDir, lockingMode);
  const agentsIn = path.join(dataDir, "agents");
  const agentsOut = path.join(targetDir, "agents");
  fs.mkdirSync(agentsOut, { recursive: true, mode: 0o700 });
  const ids = agentIdsIn(agentsIn);
  let agents = 0;
  let bytes = 0;
  for (const id of ids) {
    const into = path.join(agentsOut, `${id}.db`);
    const size = snapshotClosedDatabase(
      path.join(agentsIn, `${id}.db`),
      into,
      lockingMode,
      `the database of agent ${id}`,
    );
    if (size === null) continue;
    agents++;
    bytes += size;
    options.onAgent?.({ agentId: id, done: agents, total: ids.length });
  }
  const runtimeFile = path.join(dataDir, "runtime.db");
  const runtimeCopy = snapshotClosedDatabase(
    runtimeFile,
    path.join(targetDir, "runtime.db"),
    lockingMode,
    "runtime.db",
  );
  return { agents, bytes: bytes + (runtimeCopy ?? 0) };
}
