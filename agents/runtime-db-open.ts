import Database from "better-sqlite3";
import { BridgeError } from "../errors/bridge-error.ts";
import { refuseNewerSchema } from "../errors/newer-schema.ts";
import { AGENT_ERRORS } from "./errors.ts";
import { sqliteCode } from "./sqlite-code.ts";

/**
 * Version of runtime.db's tables, kept in its user_version. Files written before the version was kept read 0 and have
 * the tables of version 1 (CREATE TABLE IF NOT EXISTS leaves them as they are); they are marked 1 when opened.
 */
export const RUNTIME_DB_SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS alarms (agent_id TEXT PRIMARY KEY, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pending (agent_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS directory (kind TEXT NOT NULL, agent_id TEXT NOT NULL, key TEXT NOT NULL,
  value BLOB NOT NULL, PRIMARY KEY (kind, agent_id, key));
CREATE INDEX IF NOT EXISTS directory_agent ON directory (agent_id);`;

/**
 * The columns RuntimeDb reads and writes, one statement per table: a file whose tables lack them (written by another
 * version that kept no schema version) is refused when it opens, not at the first alarm with "no such column".
 */
const SHAPE_CHECKS = [
  "SELECT agent_id, at FROM alarms LIMIT 0",
  "SELECT agent_id FROM pending LIMIT 0",
  "SELECT kind, agent_id, key, value FROM directory LIMIT 0",
];

/**
 * Opens runtime.db (creating it when missing) with the runtime's pragmas and tables. Every fault is a
 * BRIDGE_ERR_STORAGE naming the file and the problem (`details.path`, and `details.sqlite` for SQLite's code): a file
 * that is no database or is damaged, one that cannot be opened (a folder in its place, a folder not writable), one a
 * newer version of the bridge wrote (`details.schemaVersion`, `details.knownSchemaVersion`), or one whose tables are
 * not the ones this build uses. Nothing stays open after a fault.
 */
export function openRuntimeDatabase(
  file: string,
  synchronous: "NORMAL" | "FULL",
  lockingMode: "EXCLUSIVE" | "NORMAL",
): Database.Database {
  let db: Database.Database;
  try {
    db = new Database(file);
  } catch (err) {
    throw openFault(err, file);
  }
  try {
    // Before the WAL switch, so an exclusive WAL keeps its index in memory rather than in a -shm file.
    db.pragma(`locking_mode = ${lockingMode}`);
    // Read before anything is written: a file that is no database fails here, and a newer one is left as it was found.
    const version = Number(db.pragma("user_version", { simple: true }));
    refuseNewer(file, version);
    // One transaction, before the WAL switch: a file whose tables are of another shape is left as it was found too,
    // not marked as this version's (nor turned into a WAL file).
    db.transaction(() => {
      if (version < RUNTIME_DB_SCHEMA_VERSION) db.exec(SCHEMA);
      for (const check of SHAPE_CHECKS) checkShape(db, file, check);
      if (version < RUNTIME_DB_SCHEMA_VERSION) db.pragma(`user_version = ${RUNTIME_DB_SCHEMA_VERSION}`);
    })();
    db.pragma("journal_mode = WAL");
    db.pragma(`synchronous = ${synchronous}`);
    return db;
  } catch (err) {
    db.close();
    throw openFault(err, file);
  }
}

/**
 * Refuses, with the error a runtime's open gives, a runtime.db a newer build wrote; writes nothing to it (an offline
 * backup must leave the file as it found it, unlike openRuntimeDatabase, which migrates an older file).
 */
export function refuseNewerRuntimeDatabase(file: string, lockingMode: "EXCLUSIVE" | "NORMAL"): void {
  let db: Database.Database;
  try {
    db = new Database(file, { fileMustExist: true });
  } catch (err) {
    throw openFault(err, file);
  }
  try {
    db.pragma(`locking_mode = ${lockingMode}`);
    refuseNewer(file, Number(db.pragma("user_version", { simple: true })));
  } catch (err) {
    throw openFault(err, file);
  } finally {
    db.close();
  }
}

/**
 * A file a newer build wrote: this build knows neither its tables nor the rules its rows keep, so it opens nothing
 * rather than read rows it may misread (an alarm it takes for another) or write rows the newer build finds wrong.
 */
function refuseNewer(file: string, version: number): void {
  const subject = `cannot open the runtime database ${file}`;
  refuseNewerSchema(AGENT_ERRORS.STORAGE, subject, version, RUNTIME_DB_SCHEMA_VERSION, { path: file });
}

function checkShape(db: Database.Database, file: string, statement: string): void {
  try {
    db.prepare(statement);
  } catch (err) {
    throw new BridgeError(
      AGENT_ERRORS.STORAGE,
      `cannot open the runtime database ${file}: its tables are not the ones this agent-bridge uses ` +
        `(${(err as Error).message}); another version of agent-bridge wrote it`,
      { path: file, sqlite: sqliteCode(err) ?? "SQLITE_ERROR" },
      { cause: err },
    );
  }
}

/** What went wrong opening `file`, as a BRIDGE_ERR_STORAGE that names the file and says what to look at. */
function openFault(err: unknown, file: string): BridgeError {
  if (err instanceof BridgeError) return err;
  const code = sqliteCode(err);
  const message = err instanceof Error ? err.message : String(err);
  let problem: string;
  if (code === "SQLITE_NOTADB" || code === "SQLITE_CORRUPT") {
    problem = `it is not a SQLite database or it is damaged (${message}); restore it from a backup, or move it aside to start with an empty one`;
  } else if (code === "SQLITE_CANTOPEN") {
    problem = `it cannot be opened (${message}): is a folder in its place, or is its folder not writable?`;
  } else problem = message;
  return new BridgeError(
    AGENT_ERRORS.STORAGE,
    `cannot open the runtime database ${file}: ${problem}`,
    code === undefined ? { path: file } : { path: file, sqlite: code },
    { cause: err },
  );
}
