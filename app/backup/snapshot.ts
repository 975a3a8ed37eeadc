/**
 * Writes one snapshot of a data directory: a new directory with the same layout (registry.db, agents/runtime.db,
 * agents/agents/<id>.db, api-token, backup.json), so a bridge started with `--data-dir` on it runs on what was saved.
 * Every database is copied by its owner (the registry's connection, the runtime: agents/runtime-snapshot.ts); nothing
 * is copied byte for byte from a live file. Written under a hidden temporary name beside the target and renamed into
 * place only once complete and synced: a failure or a crash leaves no directory under the target's name, and the
 * temporary one is removed on failure. The directory is 0700 and every file 0600, as the data directory's own.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { Logger } from "pino";
import { BridgeError } from "../../errors/index.ts";
import { API_TOKEN_FILE } from "../api/token.ts";
import { AGENTS_DIR, REGISTRY_FILE } from "../bridge/layout.ts";
import { BACKUP_ERRORS } from "./errors.ts";
import { checkTarget, MANIFEST_FILE } from "./target.ts";
import { fsyncDir, syncTree } from "./sync-tree.ts";

/** What a snapshot is taken from: the owners of the databases. */
export interface SnapshotSources {
  dataDir: string;
  registry: { backupTo(into: string): number };
  runtime: {
    backup(
      dir: string,
      options?: { onAgent?: (p: { done: number; total: number }) => void },
    ): Promise<{ agents: number; bytes: number }>;
  };
  logger: Logger;
  /** Wall-clock ms for the manifest's date; monotonic ms for the duration. */
  now(): number;
  monotonicNow(): number;
}

export interface SnapshotResult {
  /** The snapshot's directory, absolute. */
  dir: string;
  /** Agent databases in it. */
  agents: number;
  /** Bytes of every file in it. */
  bytes: number;
  durationMs: number;
}

/** Log a progress line every this many agents (and at the end). */
const PROGRESS_EVERY = 1000;

/** Writes a snapshot into `target`, a directory that must not exist yet (target.ts). */
export async function writeSnapshot(sources: SnapshotSources, target: string): Promise<SnapshotResult> {
  const started = sources.monotonicNow();
  const out = path.resolve(target);
  const parent = path.dirname(out);
  const temp = path.join(parent, `.${path.basename(out)}.partial-${randomBytes(4).toString("hex")}`);
  try {
    checkTarget(out, sources.dataDir);
    fs.mkdirSync(parent, { recursive: true, mode: 0o700 });
    fs.mkdirSync(temp, { mode: 0o700 });
  } catch (err) {
    // A backup.dir that is a file, or not writable: a failed backup naming the path, not a bare system error.
    throw backupError(err, out);
  }
  const log = sources.logger;
  log.info({ dir: out }, "backup started");
  try {
    const runtime = await sources.runtime.backup(path.join(temp, AGENTS_DIR), {
      onAgent: ({ done, total }) => {
        if (done % PROGRESS_EVERY === 0) log.info({ dir: out, agents: done, of: total }, "backup in progress");
      },
    });
    // After the agents: a device added meanwhile is in it (a registered device without data is an ordinary one).
    sources.registry.backupTo(path.join(temp, REGISTRY_FILE));
    copyApiToken(sources.dataDir, temp);
    const bytes = (await syncTree(temp)) + (await writeManifest(temp, sources.now(), runtime.agents));
    if (fs.lstatSync(out, { throwIfNoEntry: false }) !== undefined) {
      throw new BridgeError(BACKUP_ERRORS.TARGET, `cannot write a backup to ${out}: it was made meanwhile`, {
        path: out,
      });
    }
    fs.renameSync(temp, out);
    await fsyncDir(parent);
    const result = { dir: out, agents: runtime.agents, bytes, durationMs: sources.monotonicNow() - started };
    log.info(result, "backup finished");
    return result;
  } catch (err) {
    fs.rmSync(temp, { recursive: true, force: true });
    log.error({ err, dir: out }, "backup failed; nothing was left at its target");
    throw backupError(err, out);
  }
}

/** A refused target as it is; any other fault as BRIDGE_ERR_BACKUP_FAILED naming the target, with it as its cause. */
function backupError(err: unknown, out: string): BridgeError {
  if (err instanceof BridgeError && err.code === BACKUP_ERRORS.TARGET) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new BridgeError(BACKUP_ERRORS.FAILED, `backup to ${out} failed: ${message}`, { path: out }, { cause: err });
}

/**
 * The API token goes along (0600, like every file here): a bridge restored from the snapshot answers the same token,
 * so the operators' scripts and the CLI keep working. A configured token (http.apiToken) has no file to copy.
 */
function copyApiToken(dataDir: string, temp: string): void {
  const from = path.join(dataDir, API_TOKEN_FILE);
  if (!fs.existsSync(from)) return;
  fs.copyFileSync(from, path.join(temp, API_TOKEN_FILE));
}

/** The marker of a complete snapshot, written once everything else is synced; returns its size. */
async function writeManifest(temp: string, nowMs: number, agents: number): Promise<number> {
  const text = `${JSON.stringify({ format: 1, createdAt: new Date(nowMs).toISOString(), agents }, null, 2)}\n`;
  const handle = await fs.promises.open(path.join(temp, MANIFEST_FILE), "wx", 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fsyncDir(temp);
  return Buffer.byteLength(text);
}
