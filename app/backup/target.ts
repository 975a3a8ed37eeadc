/**
 * Where a snapshot may be written. A snapshot is a new directory: never one that exists (nothing of an operator's is
 * overwritten or mixed in), never inside another snapshot (a restore of that one would carry it along), never the live
 * data directory or inside its agents' folder (the runtime would take it for its own files).
 */
import fs from "node:fs";
import path from "node:path";
import { BridgeError } from "../../errors/index.ts";
import { AGENTS_DIR } from "../bridge/layout.ts";
import { BACKUP_ERRORS } from "./errors.ts";

/** The file that marks a complete snapshot (backup-manifest.ts); written last, before the rename. */
export const MANIFEST_FILE = "backup.json";

/** A name for a snapshot taken at `ms`: `backup-2024-05-01T12-00-00-000Z`, sortable, no `:` for other systems. */
export function snapshotName(ms: number): string {
  return `backup-${new Date(ms).toISOString().replace(/[:.]/g, "-")}`;
}

/**
 * The target of an API request: `dir` (relative to `backupDir`, or absolute) must name a folder under `backupDir`;
 * absent, a generated name there. The API writes nowhere else: the folder is the operator's choice, made in the config.
 */
export function apiTarget(backupDir: string, dir: string | undefined, nowMs: number): string {
  if (dir === undefined) return path.join(backupDir, snapshotName(nowMs));
  const target = path.resolve(backupDir, dir);
  const rel = path.relative(backupDir, target);
  // A NUL byte names no file: every fs call would throw a bare TypeError on it.
  if (rel === "" || rel.startsWith("..") || path.isAbsolute(rel) || dir.includes("\0")) {
    throw new BridgeError(
      BACKUP_ERRORS.TARGET,
      `dir must name a new folder under backup.dir (${backupDir}); got ${JSON.stringify(dir)}`,
      { field: "dir" },
    );
  }
  return target;
}

/** Refuses a target that may not be written (see the top of this file); returns it absolute. */
export function checkTarget(target: string, dataDir: string): string {
  const out = path.resolve(target);
  const refuse = (why: string): never => {
    throw new BridgeError(BACKUP_ERRORS.TARGET, `cannot write a backup to ${out}: ${why}`, { path: out });
  };
  if (fs.lstatSync(out, { throwIfNoEntry: false }) !== undefined) refuse("it exists already (give a new name)");
  const data = path.resolve(dataDir);
  if (out === data || isInside(out, path.join(data, AGENTS_DIR))) refuse("it is the live data directory's own");
  for (let dir = path.dirname(out); ; dir = path.dirname(dir)) {
    // A snapshot a bridge runs on (restored in place) is live data now, not a snapshot: its backups/ is fine. So is
    // one holding the data directory: an earlier data directory restored in place, whose backup a bridge now runs on.
    const live = isInside(data, dir);
    if (!live && fs.existsSync(path.join(dir, MANIFEST_FILE))) refuse(`it lies inside the snapshot ${dir}`);
    if (path.dirname(dir) === dir) break;
  }
  return out;
}

function isInside(p: string, dir: string): boolean {
  const rel = path.relative(dir, p);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}
