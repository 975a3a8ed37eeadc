/**
 * WAL settings of agent databases that keep SQLite's own housekeeping off a device's latency.
 *
 * Checkpoints: SQLite runs its automatic WAL checkpoint inside the COMMIT that crosses `wal_autocheckpoint` pages, on
 * the main thread (a copy of the WAL's pages into the database plus an fsync). With the default threshold every agent
 * of a fleet sending at the same rate crossed it in the same second, and the checkpoints ran back to back: event-loop
 * stalls of 150 to 880 ms (docs/benchmarks.md, "Fleet"). Each database gets its own threshold, spread over
 * [WAL_CHECKPOINT_MIN_PAGES, WAL_CHECKPOINT_MIN_PAGES + WAL_CHECKPOINT_SPREAD_PAGES) by a hash of its file name, so the
 * checkpoints of agents with the same traffic fall due at different times. The average stays at SQLite's default of
 * 1000 pages, so WAL files take no more disk than before. Deterministic (a hash of the file's name, not of its
 * directory, and not a random source), so a restart or a moved data directory keeps each agent's cadence.
 *
 * Creation: switching a new, empty file to WAL and writing the runtime's tables syncs the file two or three times
 * under SQLite's defaults, tens of ms on a virtual disk for each connecting device. Nothing acknowledged lives in a
 * file that is being created, so under `synchronous = NORMAL` these steps run with `synchronous = OFF`: a kill -9
 * loses nothing (the writes are in the OS), and the first checkpoint or close syncs the file. Under FULL nothing
 * changes. Acknowledged-means-stored is untouched: every later commit runs with the configured level.
 */
import path from "node:path";
import type Database from "better-sqlite3";

/** Lowest per-database `wal_autocheckpoint` threshold, in pages. */
export const WAL_CHECKPOINT_MIN_PAGES = 500;
/** Width of the spread of thresholds, in pages (thresholds average MIN + SPREAD / 2 = 1000, SQLite's default). */
export const WAL_CHECKPOINT_SPREAD_PAGES = 1000;

/** FNV-1a of a string, 32 bits: cheap and stable across processes and Node versions. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * The `wal_autocheckpoint` threshold of the database at `file`, in pages of `pageSizeBytes`. The spread above is in
 * 4 KiB pages (SQLite's default size); smaller pages get proportionally more of them, so a checkpoint falls due after
 * the same WAL bytes whatever the page size.
 */
export function walAutocheckpointPages(file: string, pageSizeBytes = 4096): number {
  const pages4k = WAL_CHECKPOINT_MIN_PAGES + (fnv1a(path.basename(file)) % WAL_CHECKPOINT_SPREAD_PAGES);
  return Math.max(1, Math.round((pages4k * 4096) / pageSizeBytes));
}

/**
 * Before the journal-mode switch: when the file is new and empty (`fresh`, from its `page_count`) and the configured
 * level is NORMAL, sets `synchronous = OFF` for its creation and returns true; the caller sets the configured level
 * once the schema is written. Otherwise changes nothing and returns false.
 */
export function creationSynchronous(db: Database.Database, synchronous: "NORMAL" | "FULL", fresh: boolean): boolean {
  if (synchronous !== "NORMAL" || !fresh) return false;
  db.pragma("synchronous = OFF");
  return true;
}
