/** The registry's SQLite schema, its migrations and how the file is opened. */
import { statSync } from "node:fs";
import Database from "better-sqlite3";
import { refuseNewerSchema } from "../../errors/index.ts";
import { BrokerErrorCode } from "../errors.ts";

/** A row of the `devices` table. */
export interface DeviceRow {
  id: string;
  secret_hash: string;
  codec: string | null;
  agent_class: string | null;
  created_at: number;
  last_seen: number | null;
  firmware: string | null;
  /** Drawn at random when the row is inserted (schema 2). */
  record_id: string;
  /** Drawn at random with each secret hash the row gets: insert and rotation (schema 2). */
  secret_id: string;
}

/**
 * Step `i` takes a file from schema version `i` (SQLite `user_version`; 0 is a new file) to `i + 1`. A step is never
 * edited once released: files in the field are at every version, and each must reach the last one the same way.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS devices (
     id          TEXT PRIMARY KEY NOT NULL,
     secret_hash TEXT NOT NULL,
     codec       TEXT,
     agent_class TEXT,
     created_at  INTEGER NOT NULL,
     last_seen   INTEGER,
     firmware    TEXT
   ) STRICT;`,
  // created_at (ms) told records apart, and said nothing of a rotated secret: a device removed and added again within
  // one millisecond looked like the old record, and a CONNECT that verified a secret rotated meanwhile could not tell.
  // Devices already provisioned get their ids here, each its own (randomblob runs once per row).
  `ALTER TABLE devices ADD COLUMN record_id TEXT NOT NULL DEFAULT '';
   ALTER TABLE devices ADD COLUMN secret_id TEXT NOT NULL DEFAULT '';
   UPDATE devices SET record_id = lower(hex(randomblob(16))), secret_id = lower(hex(randomblob(16)));`,
  // A build of schema 1 (the last release's CLI, a bridge rolled back) opens a newer file without a word: it checks no
  // version. Its writes left the ids '' (the columns' default), so records it added were one record to the registry
  // watch and to the CONNECT's re-read, and a secret it rotated kept its secretId. The file itself now fills them in
  // for any writer, and the rows such a build wrote before this step get theirs here.
  `UPDATE devices SET record_id = lower(hex(randomblob(16))) WHERE record_id = '';
   UPDATE devices SET secret_id = lower(hex(randomblob(16))) WHERE secret_id = '';
   CREATE TRIGGER devices_ids_for_older_writers AFTER INSERT ON devices
   WHEN NEW.record_id = '' OR NEW.secret_id = ''
   BEGIN
     UPDATE devices SET
       record_id = CASE WHEN record_id = '' THEN lower(hex(randomblob(16))) ELSE record_id END,
       secret_id = CASE WHEN secret_id = '' THEN lower(hex(randomblob(16))) ELSE secret_id END
     WHERE id = NEW.id;
   END;
   CREATE TRIGGER devices_secret_id_for_older_writers AFTER UPDATE OF secret_hash ON devices
   WHEN NEW.secret_id = OLD.secret_id AND NEW.secret_hash IS NOT OLD.secret_hash
   BEGIN
     UPDATE devices SET secret_id = lower(hex(randomblob(16))) WHERE id = NEW.id;
   END;`,
];

const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * A file a newer build migrated: this build knows neither its columns nor the rules its rows keep, so it opens nothing
 * rather than write rows the newer build would find half-filled (as a build of schema 1 wrote rows with empty ids).
 */
function refuseNewer(path: string, version: number): void {
  refuseNewerSchema(BrokerErrorCode.registry, `cannot open device registry at ${path}`, version, SCHEMA_VERSION, {
    path,
  });
}

function userVersion(db: Database.Database): number {
  return db.pragma("user_version", { simple: true }) as number;
}

/**
 * Brings the file to SCHEMA_VERSION, or refuses one of a newer version. The bridge and the CLI may open an old file at
 * the same moment: the steps run in one IMMEDIATE transaction (the write lock first, waiting up to busy_timeout), and
 * the version is read again inside it, so the second process finds the work done instead of adding the same columns
 * twice.
 */
function migrate(db: Database.Database, path: string): void {
  const found = userVersion(db);
  refuseNewer(path, found);
  if (found === SCHEMA_VERSION) return;
  db.transaction(() => {
    const from = userVersion(db);
    refuseNewer(path, from);
    if (from === SCHEMA_VERSION) return;
    for (const step of MIGRATIONS.slice(from)) db.exec(step);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

/**
 * Copies the registry file at `path` into the new file `into` (VACUUM INTO) through a connection that runs no
 * migration, for a backup with no bridge running: an older file is copied as it is (a bridge started on the copy
 * migrates it), so the backup leaves the live file as an older build can still open it. A newer build's file is
 * refused, as openRegistryDatabase refuses it. Returns the copy's size.
 */
export function copyRegistryFile(path: string, into: string): number {
  const db = new Database(path, { fileMustExist: true });
  try {
    db.pragma("busy_timeout = 5000");
    refuseNewer(path, userVersion(db));
    db.prepare("VACUUM INTO ?").run(into);
  } finally {
    db.close();
  }
  return statSync(into).size;
}

/** Refuses, with the error openRegistryDatabase gives, a registry file a newer build wrote; writes nothing. */
export function refuseNewerRegistryFile(path: string): void {
  const db = new Database(path, { fileMustExist: true });
  try {
    refuseNewer(path, userVersion(db));
  } finally {
    db.close();
  }
}

/**
 * Opens the registry file in WAL mode with a busy timeout, so a CLI process adding devices and the running bridge
 * share it: readers never block the writer, and a writer waits for the other instead of failing with SQLITE_BUSY.
 *
 * A newer build's file is refused before anything is set on it, so it is left as it was found: `journal_mode = WAL`
 * converts a file kept in another journal mode for good (its header and its journal file), and an older build must not
 * change a newer build's file. Reading the version writes nothing (busy_timeout is the connection's own), and a
 * read-write connection, unlike a read-only one, removes the -wal and -shm files of a WAL file again when it closes.
 */
export function openRegistryDatabase(path: string): Database.Database {
  const db = new Database(path);
  try {
    db.pragma("busy_timeout = 5000");
    refuseNewer(path, userVersion(db));
    if (path !== ":memory:") db.pragma("journal_mode = WAL");
    // NORMAL is durable across process crashes in WAL mode; only an OS crash may lose the last last_seen batch.
    db.pragma("synchronous = NORMAL");
    migrate(db, path);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}
