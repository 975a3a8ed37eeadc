import fs from "node:fs";
import Database from "better-sqlite3";
import { BridgeError } from "../errors/bridge-error.ts";
import { AGENT_ERRORS } from "./errors.ts";
import { storageError } from "./storage.ts";

// How one SQLite database is copied into a backup: `VACUUM INTO` on the connection that owns the file. Chosen over
// better-sqlite3's `db.backup()` because it is one synchronous statement: the copy is a consistent snapshot of the
// last commit, and nothing of the owner (an agent's next event, its hibernation) can run in the middle of it, which an
// online backup stepping over several turns of the event loop would allow. It also reads through the owner's own
// connection, so an exclusively locked WAL file needs no second connection, and it writes a compact file (no free
// pages, no WAL) that SQLite syncs as it ends. Its cost is that the event loop waits for one database's copy; the
// runtime yields between databases (runtime-snapshot.ts).

/** Copies the database `db` holds into the new file `into` (which must not exist); returns the copy's size. */
export function vacuumInto(db: Database.Database, into: string, what: string): number {
  // Between events no transaction is open; one open here would be copied half done, so it is refused.
  if (db.inTransaction) {
    throw new BridgeError(AGENT_ERRORS.STORAGE, `${what}: cannot copy a database inside a transaction`, {});
  }
  try {
    db.prepare("VACUUM INTO ?").run(into);
  } catch (err) {
    throw storageError(err, `copying ${what} into ${into}`);
  }
  return fs.statSync(into).size;
}

/**
 * Copies the closed database `file` into `into` through a connection of its own, opened and closed in the same
 * synchronous call, so nothing opens the file in between. `lockingMode` is the runtime's: under EXCLUSIVE no `-shm`
 * file is made beside it. Returns the copy's size, or null when the file is gone (its agent was destroyed since it was
 * listed): a file is never created here.
 */
export function snapshotClosedDatabase(
  file: string,
  into: string,
  lockingMode: "EXCLUSIVE" | "NORMAL",
  what: string,
): number | null {
  let db: Database.Database;
  try {
    db = new Database(file, { fileMustExist: true });
  } catch (err) {
    if (!fs.existsSync(file)) return null;
    throw storageError(err, `opening ${what}`);
  }
  try {
    db.exec(`PRAGMA locking_mode = ${lockingMode}`);
    return vacuumInto(db, into, what);
  } finally {
    db.close();
  }
}
