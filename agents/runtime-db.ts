import type Database from "better-sqlite3";
import type { Value } from "../codecs/frames.ts";
import { storageError } from "./storage.ts";
import { openRuntimeDatabase } from "./runtime-db-open.ts";
import { vacuumInto } from "./snapshot-db.ts";
import { decodeValue, encodeValue } from "./value-codec.ts";

type Param = null | number | bigint | string | Uint8Array;

/** An agent's rows that make a start wake it (RuntimeDb.wakeRowsOf). */
export interface AgentWakeRows {
  alarmAt: number | null;
  pending: boolean;
}

/**
 * The runtime's own small database in the data dir: the next alarm of every agent that has one, the agents with
 * unfinished work (queue items, tasks, directory changes) to wake on start, and the fleet directory. It lets the
 * runtime find sleeping agents' work without opening their databases.
 */
export class RuntimeDb {
  readonly #db: Database.Database;
  readonly #file: string;
  readonly #stmts = new Map<string, Database.Statement>();

  /**
   * `lockingMode` is the agent databases' (runtime option): under EXCLUSIVE, as there, the bridge holds the file for
   * its lifetime and its autocommits (the alarm index and pending marks, a few per task or schedule) skip the file
   * and shared-memory locks, about a quarter of each. One bridge per data directory is enforced before anything in
   * it is opened (app/bridge/data-dir-lock.ts).
   */
  constructor(file: string, synchronous: "NORMAL" | "FULL", lockingMode: "EXCLUSIVE" | "NORMAL" = "EXCLUSIVE") {
    this.#file = file;
    // Faults name the file and the problem (a damaged file, one a newer version wrote), see runtime-db-open.ts.
    this.#db = openRuntimeDatabase(file, synchronous, lockingMode);
  }

  #stmt(text: string): Database.Statement {
    let s = this.#stmts.get(text);
    if (s === undefined) {
      s = this.#db.prepare(text);
      this.#stmts.set(text, s);
    }
    return s;
  }

  #run(text: string, ...params: Param[]): void {
    this.#changes(text, ...params);
  }

  /** Runs a write; the number of rows it changed. */
  #changes(text: string, ...params: Param[]): number {
    try {
      return this.#stmt(text).run(...params).changes;
    } catch (err) {
      throw storageError(err, "runtime database");
    }
  }

  /** Runs a read; a fault (a damaged page) is a BRIDGE_ERR_STORAGE naming the file. */
  #all<T>(text: string, ...params: Param[]): T[] {
    try {
      return this.#stmt(text).all(...params) as T[];
    } catch (err) {
      throw storageError(err, `runtime database ${this.#file}`);
    }
  }

  alarms(): Array<{ agentId: string; at: number }> {
    return this.#all<{ agent_id: string; at: number }>("SELECT agent_id, at FROM alarms").map((r) => ({
      agentId: r.agent_id,
      at: r.at,
    }));
  }

  setAlarm(agentId: string, at: number | null): void {
    if (at === null) this.#run("DELETE FROM alarms WHERE agent_id = ?", agentId);
    else this.#run("INSERT OR REPLACE INTO alarms (agent_id, at) VALUES (?, ?)", agentId, at);
  }

  pendingAgents(): string[] {
    return this.#all<{ agent_id: string }>("SELECT agent_id FROM pending").map((r) => r.agent_id);
  }

  /** The rows that wake the agent (its next alarm, its pending mark), as a start would read them now. */
  wakeRowsOf(agentId: string): AgentWakeRows {
    const alarm = this.#all<{ at: number }>("SELECT at FROM alarms WHERE agent_id = ?", agentId)[0];
    const pending = this.#all<{ one: number }>("SELECT 1 AS one FROM pending WHERE agent_id = ?", agentId).length > 0;
    return { alarmAt: alarm?.at ?? null, pending };
  }

  /** Every agent with a row in any table (alarm, pending mark, directory entry). */
  agentIdsWithRows(): string[] {
    return this.#all<{ agent_id: string }>(
      "SELECT agent_id FROM alarms UNION SELECT agent_id FROM pending UNION SELECT agent_id FROM directory",
    ).map((r) => r.agent_id);
  }

  setPending(agentId: string, on: boolean): void {
    if (on) this.#run("INSERT OR IGNORE INTO pending (agent_id) VALUES (?)", agentId);
    else this.#run("DELETE FROM pending WHERE agent_id = ?", agentId);
  }

  directoryPut(agentId: string, kind: string, key: string, value: Value | null): void {
    if (value === null)
      this.#run("DELETE FROM directory WHERE kind = ? AND agent_id = ? AND key = ?", kind, agentId, key);
    else {
      this.#run(
        "INSERT OR REPLACE INTO directory (kind, agent_id, key, value) VALUES (?, ?, ?, ?)",
        kind,
        agentId,
        key,
        encodeValue(value),
      );
    }
  }

  /** Makes the index match the agent's own entries (after a crash between its commit and the index write). */
  directoryReplace(agentId: string, entries: Array<{ kind: string; key: string; value: Value }>): void {
    const current = this.#all<{ kind: string; key: string; value: Uint8Array }>(
      "SELECT kind, key, value FROM directory WHERE agent_id = ? ORDER BY kind, key",
      agentId,
    );
    const wanted = entries
      .map((e) => ({ kind: e.kind, key: e.key, value: Buffer.from(encodeValue(e.value)) }))
      .sort((a, b) => (a.kind === b.kind ? cmp(a.key, b.key) : cmp(a.kind, b.kind)));
    const same =
      current.length === wanted.length &&
      current.every((c, i) => c.kind === wanted[i].kind && c.key === wanted[i].key && wanted[i].value.equals(c.value));
    if (same) return;
    this.#db.transaction(() => {
      this.#run("DELETE FROM directory WHERE agent_id = ?", agentId);
      for (const w of wanted) {
        this.#run(
          "INSERT INTO directory (kind, agent_id, key, value) VALUES (?, ?, ?, ?)",
          w.kind,
          agentId,
          w.key,
          w.value,
        );
      }
    })();
  }

  directoryList(kind: string): Array<{ agentId: string; key: string; value: Value }> {
    const rows = this.#all<{ agent_id: string; key: string; value: Uint8Array }>(
      "SELECT agent_id, key, value FROM directory WHERE kind = ? ORDER BY agent_id, key",
      kind,
    );
    return rows.map((r) => ({ agentId: r.agent_id, key: r.key, value: decodeValue(r.value) }));
  }

  /** Removes every row of the agent; true when it had any. */
  deleteAgent(agentId: string): boolean {
    return this.#db.transaction(() => {
      let rows = 0;
      for (const table of ["alarms", "pending", "directory"]) {
        rows += this.#changes(`DELETE FROM ${table} WHERE agent_id = ?`, agentId);
      }
      return rows > 0;
    })();
  }

  /** Copies the file into the new file `into` (a backup, snapshot-db.ts); returns the copy's size. */
  vacuumInto(into: string): number {
    return vacuumInto(this.#db, into, "the runtime database");
  }

  close(): void {
    this.#db.close();
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
