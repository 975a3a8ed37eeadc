/** The registry's SQLite schema and how the file is opened. */
import Database from "better-sqlite3";

/** A row of the `devices` table. */
export interface DeviceRow {
  id: string;
  secret_hash: string;
  codec: string | null;
  agent_class: string | null;
  created_at: number;
  last_seen: number | null;
  firmware: string | null;
}

const SCHEMA_VERSION = 1;

/**
 * Opens the registry file in WAL mode with a busy timeout, so a CLI process adding devices and the running bridge
 * share it: readers never block the writer, and a writer waits for the other instead of failing with SQLITE_BUSY.
 */
export function openRegistryDatabase(path: string): Database.Database {
  const db = new Database(path);
  try {
    db.pragma("busy_timeout = 5000");
    if (path !== ":memory:") db.pragma("journal_mode = WAL");
    // NORMAL is durable across process crashes in WAL mode; only an OS crash may lose the last last_seen batch.
    db.pragma("synchronous = NORMAL");
    const version = db.pragma("user_version", { simple: true });
    if (version === 0) {
      db.exec(`
        CREATE TABLE IF NOT EXISTS devices (
          id          TEXT PRIMARY KEY NOT NULL,
          secret_hash TEXT NOT NULL,
          codec       TEXT,
          agent_class TEXT,
          created_at  INTEGER NOT NULL,
          last_seen   INTEGER,
          firmware    TEXT
        ) STRICT;
      `);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    }
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}
