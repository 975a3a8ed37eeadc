/**
 * A snapshot of a data directory no bridge runs on, by the command itself (its caller holds the data directory's
 * lock): the registry and the agent runtime are opened as a bridge would open them, never started (no alarm fires, no
 * agent wakes), and their databases copied by the same code as a running bridge's backup.
 */
import fs from "node:fs";
import path from "node:path";
import { type SnapshotResult, writeSnapshot } from "../backup/snapshot.ts";
import { AGENTS_DIR, REGISTRY_FILE } from "../bridge/layout.ts";

export async function offlineSnapshot(dataDir: string, target: string): Promise<SnapshotResult> {
  // Loaded on use, like the registry in `devices`: `--help` and the other commands never load SQLite.
  const { Agent, createRuntime, systemClock } = await import("../../agents/index.ts");
  const { createDeviceRegistry } = await import("../../broker/registry/index.ts");
  const { default: pino } = await import("pino");
  const runtimeDir = path.join(dataDir, AGENTS_DIR);
  // Copying constructs no agent; the runtime wants a class all the same.
  class NeverConstructed extends Agent {}
  // A directory no bridge ran on has no agents: none is made there for the backup.
  const runtime = fs.existsSync(runtimeDir)
    ? createRuntime({ dataDir: runtimeDir, defaultAgentClass: NeverConstructed, logger: pino({ level: "silent" }) })
    : undefined;
  const registryFile = path.join(dataDir, REGISTRY_FILE);
  // Nor a registry: the snapshot then has none either, as a bridge started on it makes its own.
  const registry = fs.existsSync(registryFile) ? createDeviceRegistry({ path: registryFile }) : undefined;
  try {
    return await writeSnapshot(
      {
        dataDir,
        registry: registry ?? { backupTo: () => 0 },
        runtime: runtime ?? { backup: async () => ({ agents: 0, bytes: 0 }) },
        // Progress and the outcome as JSON lines on stderr; stdout gets the result alone.
        logger: pino({ base: null }, pino.destination(2)),
        now: systemClock.now,
        monotonicNow: systemClock.monotonicNow,
      },
      target,
    );
  } finally {
    registry?.close();
    await runtime?.shutdown();
  }
}
