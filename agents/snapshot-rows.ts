import Database from "better-sqlite3";
import type { AgentWakeRows } from "./runtime-db.ts";
import { storageError } from "./storage.ts";

// A backup copies runtime.db after every agent (runtime-snapshot.ts), so its rows are those of a later moment than
// each agent's copy. A row added since costs the restored agent a wake that finds nothing due; a row gone since (a
// schedule that fired, a queue that drained meanwhile) would leave the copy's schedule or queue item waiting for a wake
// that never comes. So the rows each agent had as it was copied are put back into the copy of runtime.db, joined with
// those it has: the earlier alarm, and a pending mark when either has one.

/** Joins `rows` (by agent, as each was copied) into the runtime.db copy `file`, which no one else has open. */
export function keepWakeRows(
  file: string,
  rows: ReadonlyMap<string, AgentWakeRows>,
  lockingMode: "EXCLUSIVE" | "NORMAL",
): void {
  const wanted = [...rows].filter(([, r]) => r.alarmAt !== null || r.pending);
  if (wanted.length === 0) return;
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { fileMustExist: true });
    db.exec(`PRAGMA locking_mode = ${lockingMode}`);
    const alarm = db.prepare(
      "INSERT INTO alarms (agent_id, at) VALUES (?, ?) ON CONFLICT (agent_id) DO UPDATE SET at = min(at, excluded.at)",
    );
    const pending = db.prepare("INSERT OR IGNORE INTO pending (agent_id) VALUES (?)");
    db.transaction(() => {
      for (const [id, r] of wanted) {
        if (r.alarmAt !== null) alarm.run(id, r.alarmAt);
        if (r.pending) pending.run(id);
      }
    })();
  } catch (err) {
    throw storageError(err, `keeping the agents' alarms in the copy ${file}`);
  } finally {
    db?.close();
  }
}
