// Opening one agent database (pragmas, the runtime's tables, the schema version a newer build may have written) and the
// mapping of SQLite faults to stable codes. The `sql` runner over an open database, the hot path of every event, is
// sql-runner.ts.
import Database from "better-sqlite3";
import { BridgeError } from "../errors/bridge-error.ts";
import { refuseNewerSchema } from "../errors/newer-schema.ts";
import { AGENT_ERRORS } from "./errors.ts";
import { creationSynchronous, walAutocheckpointPages } from "./wal-tuning.ts";

type Db = Database.Database;

/** How agent databases are opened (see docs/agents.md, "Durability"). */
export interface StorageSettings {
  /** Cap of one agent database in bytes, enforced by SQLite's max_page_count. */
  maxDatabaseBytes: number;
  /** NORMAL: durable across a process crash (kill -9), not power loss. FULL: also power loss, slower. */
  synchronous: "NORMAL" | "FULL";
  /** EXCLUSIVE keeps the WAL index in heap memory and skips per-transaction file locking. */
  lockingMode: "EXCLUSIVE" | "NORMAL";
  /** Most page cache one agent database may hold, KiB (SQLite `cache_size = -N`). */
  cacheSizeKiB: number;
  /** SQLite `page_size` of a database this call creates; an existing file keeps its own. */
  pageSizeBytes: number;
}

/**
 * Version of the runtime's tables, kept in the database's user_version (the runtime's alone: DeviceAgent keeps its
 * own in its `device_schema` table, and agents' user tables leave it alone).
 */
export const AGENT_DB_SCHEMA_VERSION = 1;

/** The runtime's own tables in every agent database; user tables must not start with `_bridge_`. */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS _bridge_state (chunk INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS _bridge_connections (id TEXT PRIMARY KEY, kind TEXT NOT NULL, codec TEXT NOT NULL,
  readonly INTEGER NOT NULL, protocol INTEGER NOT NULL, context BLOB, state BLOB);
CREATE TABLE IF NOT EXISTS _bridge_schedules (id TEXT PRIMARY KEY, method TEXT NOT NULL, payload BLOB,
  type TEXT NOT NULL, time INTEGER NOT NULL, cron TEXT, interval_s REAL, retry TEXT, attempts INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS _bridge_schedules_time ON _bridge_schedules (time);
CREATE TABLE IF NOT EXISTS _bridge_queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
  method TEXT NOT NULL, payload BLOB, attempts INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL,
  retry TEXT, next_at INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS _bridge_tasks (id TEXT PRIMARY KEY, kind TEXT NOT NULL, input BLOB, started_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS _bridge_directory (kind TEXT NOT NULL, key TEXT NOT NULL, value BLOB, PRIMARY KEY (kind, key));
`;

/** Maps SQLite faults to stable codes: a full database is BRIDGE_ERR_STORAGE_FULL, anything else BRIDGE_ERR_STORAGE. */
export function storageError(err: unknown, what: string): unknown {
  if (err instanceof BridgeError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "SQLITE_FULL") {
    return new BridgeError(AGENT_ERRORS.STORAGE_FULL, `agent database is full (${what})`, {}, { cause: err });
  }
  if (typeof code === "string" && code.startsWith("SQLITE_")) {
    return new BridgeError(
      AGENT_ERRORS.STORAGE,
      `${what}: ${(err as Error).message}`,
      { sqlite: code },
      { cause: err },
    );
  }
  return err;
}

/**
 * Opens (creating if needed) one agent database with the runtime's pragmas and tables. A file a newer version of the
 * bridge wrote is refused untouched (see refuseNewer).
 */
export function openAgentDatabase(file: string, settings: StorageSettings): Db {
  const db = new Database(file);
  try {
    // Pragmas whose answer is not read go through exec, several in one call: db.pragma() prepares, runs and builds
    // a result for each, about 40 us of a known agent's wake in all (docs/benchmarks.md, "Session 21").
    db.exec(`PRAGMA locking_mode = ${settings.lockingMode}`);
    // Read before any pragma that changes the file (page_size, the WAL switch), so a newer one is left as it was found.
    const version = Number(db.pragma("user_version", { simple: true }));
    refuseNewer(file, version);
    // A new file holds nothing acknowledged yet: under NORMAL its creation (journal-mode switch, schema) skips the
    // fsyncs that cost a connecting device tens of ms; the first checkpoint or close syncs it (see wal-tuning.ts).
    // A file with the runtime's tables is not new: its page count is not asked.
    const fresh = version < AGENT_DB_SCHEMA_VERSION && Number(db.pragma("page_count", { simple: true })) === 0;
    const creating = creationSynchronous(db, settings.synchronous, fresh);
    // Only an empty file takes a page size (before WAL mode fixes it); SQLite ignores the pragma on an existing one.
    if (fresh) db.exec(`PRAGMA page_size = ${settings.pageSizeBytes}`);
    const pageSize = Number(db.pragma("page_size", { simple: true }));
    const pages = Math.max(16, Math.floor(settings.maxDatabaseBytes / pageSize));
    db.exec(
      [
        // Kept in the file once set, so a no-op on every wake but the first; setting it costs what asking would.
        "PRAGMA journal_mode = WAL",
        creating ? "" : `PRAGMA synchronous = ${settings.synchronous}`,
        // Spread per database so agents with the same traffic do not all checkpoint in the same second
        // (wal-tuning.ts).
        `PRAGMA wal_autocheckpoint = ${walAutocheckpointPages(file, pageSize)}`,
        // SQLite's default (2 MiB) times 1000 active agents is the bridge's largest memory cost; agent databases are
        // small and hot pages stay in the OS cache, so a small per-database cap costs little (docs/benchmarks.md).
        `PRAGMA cache_size = -${settings.cacheSizeKiB}`,
        `PRAGMA max_page_count = ${pages}`,
      ].join(";"),
    );
    // user_version marks a database whose runtime tables exist, so a wake skips the schema statements.
    if (version < AGENT_DB_SCHEMA_VERSION) {
      // One transaction: one WAL commit instead of one per statement.
      db.exec("BEGIN");
      db.exec(SCHEMA);
      db.pragma(`user_version = ${AGENT_DB_SCHEMA_VERSION}`);
      db.exec("COMMIT");
    }
    if (creating) db.pragma(`synchronous = ${settings.synchronous}`);
    return db;
  } catch (err) {
    db.close();
    throw storageError(err, "opening the agent database");
  }
}

/**
 * A file a newer build wrote (the bridge was rolled back): this build knows neither its tables nor the rules its rows
 * keep, so the wake fails rather than misread them or write rows the newer build finds wrong. The message names no
 * path, as it reaches devices in error frames (an up message's, a WebSocket client's) and operators' API answers;
 * `details.path` is for the log line of the failed wake.
 */
function refuseNewer(file: string, version: number): void {
  refuseNewerSchema(AGENT_ERRORS.STORAGE, "cannot open the agent database", version, AGENT_DB_SCHEMA_VERSION, {
    path: file,
  });
}
