/**
 * A snapshot of a data directory no bridge runs on, by the command itself (its caller holds the data directory's
 * lock). No registry or runtime is constructed: opening them as a bridge does migrates their databases to this build's
 * schema, so a newer build's backup taken before its first start would upgrade the live files, and the older build
 * would then refuse them. Each database is copied instead with VACUUM INTO through a connection that runs no
 * migration: an older file is copied as it is, and one a newer build wrote is refused before anything is copied, with
 * the error a `start` gives.
 */
import fs from "node:fs";
import path from "node:path";
import { type SnapshotResult, writeSnapshot } from "../backup/snapshot.ts";
import { AGENTS_DIR, REGISTRY_FILE } from "../bridge/layout.ts";

export async function offlineSnapshot(dataDir: string, target: string): Promise<SnapshotResult> {
  // Loaded on use, like the registry in `devices`: `--help` and the other commands never load SQLite.
  const { backupClosedRuntime, refuseNewerRuntimeDir, systemClock } = await import("../../agents/index.ts");
  const { copyRegistryFile, refuseNewerRegistryFile } = await import("../../broker/registry/index.ts");
  const { default: pino } = await import("pino");
  const { createLogger } = await import("../logging.ts");
  const runtimeDir = path.join(dataDir, AGENTS_DIR);
  const registryFile = path.join(dataDir, REGISTRY_FILE);
  // A directory no bridge ran on has no agents, nor a registry: the snapshot then has none either, as a bridge started
  // on it makes its own.
  const hasRuntime = fs.existsSync(runtimeDir);
  const hasRegistry = fs.existsSync(registryFile);
  if (hasRegistry) refuseNewerRegistryFile(registryFile);
  if (hasRuntime) refuseNewerRuntimeDir(runtimeDir);
  return writeSnapshot(
    {
      dataDir,
      registry: { backupTo: (into) => (hasRegistry ? copyRegistryFile(registryFile, into) : 0) },
      runtime: {
        backup: async (dir, options) =>
          hasRuntime ? backupClosedRuntime(runtimeDir, dir, options) : { agents: 0, bytes: 0 },
      },
      // Progress and the outcome as the bridge's own log lines (ISO time, `service`, secrets censored), on stderr:
      // stdout gets the result alone.
      logger: createLogger({ destination: pino.destination({ dest: 2, sync: true }) }),
      now: systemClock.now,
      monotonicNow: systemClock.monotonicNow,
    },
    target,
  );
}
