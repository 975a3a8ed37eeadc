/**
 * The backup benchmark's baseline: what an operator does with the bridge stopped, a plain `cp -a` of the data dir,
 * timed as a process (as they would run it). cp does not fsync what it wrote, where a backup syncs every file before
 * it calls itself done, so the same copy synced afterwards (app/backup/sync-tree.ts, the backup's own step) is timed
 * too: the two baselines bound what the copy alone costs.
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { syncTree } from "../../app/backup/sync-tree.ts";

const run = promisify(execFile);

export interface ColdCopy {
  /** `cp -a` wall time, ms. */
  copyMs: number;
  /** Then fsyncing every file and directory of the copy, ms. */
  syncMs: number;
  bytes: number;
  files: number;
}

/** `cp -a source target` (target must not exist), then a sync of the copy; both timed. */
export async function coldCopy(source: string, target: string): Promise<ColdCopy> {
  const started = performance.now();
  await run("cp", ["-a", source, target]);
  const copied = performance.now();
  await syncTree(target);
  const synced = performance.now();
  return { copyMs: copied - started, syncMs: synced - copied, ...treeSize(target) };
}

/** The files under `dir` and their total size. */
export function treeSize(dir: string): { bytes: number; files: number } {
  let bytes = 0;
  let files = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    bytes += fs.statSync(path.join(entry.parentPath, entry.name)).size;
    files++;
  }
  return { bytes, files };
}
