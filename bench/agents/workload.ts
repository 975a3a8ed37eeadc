/** The agent and raw-SQLite baseline the agent benchmark drives: one telemetry row per event. */
import Database from "better-sqlite3";
import { Agent, type Connection, type ConnectionTransport, type InboundMessage } from "../../agents/index.ts";
import { RUNTIME_DEFAULTS } from "../../agents/options.ts";
import { walAutocheckpointPages } from "../../agents/wal-tuning.ts";

/** One row per event, the same row the baseline inserts. */
export class BenchAgent extends Agent<{ n: number; note: string }> {
  static override callable = ["ping"];
  override initialState = { n: 0, note: "x".repeat(160) };
  override onStart(): void {
    this.sql`CREATE TABLE IF NOT EXISTS readings (ts INTEGER NOT NULL, v REAL NOT NULL)`;
  }
  override onMessage(_conn: Connection, message: InboundMessage): void {
    if (message.channel !== "rpc") return;
    this.sql`INSERT INTO readings (ts, v) VALUES (${Date.now()}, ${Number(message.frame.id)})`;
  }
  ping(): number {
    return 1;
  }
  /** The throughput event: the same row the baseline inserts. */
  record(v: number): null {
    this.sql`INSERT INTO readings (ts, v) VALUES (${Date.now()}, ${v})`;
    return null;
  }
  touch(): number {
    this.setState({ ...this.state, n: this.state.n + 1 });
    return this.state.n;
  }
}

/** A transport that drops what it is given (the broker's cost is not the runtime's). */
export const nullTransport: ConnectionTransport = { send() {}, sendProtocol() {}, close() {} };

/** The statements one open baseline database runs, prepared once per open. */
interface BaselineHandle {
  db: Database.Database;
  insert: Database.Statement;
  begin: Database.Statement;
  commit: Database.Statement;
  savepoint: Database.Statement;
}

/**
 * The baseline: better-sqlite3 on the same per-agent files with the same pragmas (locking mode, journal mode,
 * synchronous level, checkpoint threshold, page cache), one transaction per event,
 * no runtime around it. `maxOpen` bounds open handles like the runtime's maxActiveAgents (LRU). `synchronous` is
 * the runtime's default (NORMAL) unless a settings row compares another level.
 */
export class RawBaseline {
  readonly #dir: string;
  readonly #maxOpen: number;
  readonly #synchronous: "NORMAL" | "FULL";
  readonly #open = new Map<string, BaselineHandle>();
  constructor(agentsDir: string, maxOpen: number, synchronous: "NORMAL" | "FULL" = "NORMAL") {
    this.#dir = agentsDir;
    this.#maxOpen = maxOpen;
    this.#synchronous = synchronous;
  }
  #handle(id: string): BaselineHandle {
    let h = this.#open.get(id);
    if (h !== undefined) {
      this.#open.delete(id);
      this.#open.set(id, h);
      return h;
    }
    const file = `${this.#dir}/${id}.db`;
    const db = new Database(file);
    db.pragma("locking_mode = EXCLUSIVE");
    db.pragma("journal_mode = WAL");
    db.pragma(`synchronous = ${this.#synchronous}`);
    // The runtime's checkpoint threshold for this agent (it follows the file name): a checkpoint copies pages and
    // syncs the database, so with SQLite's default threshold the baseline checkpointed several times as often as the
    // runtime in a short run, which charged it work the runtime had not done yet.
    db.pragma(`wal_autocheckpoint = ${walAutocheckpointPages(file, Number(db.pragma("page_size", { simple: true })))}`);
    db.pragma(`cache_size = -${RUNTIME_DEFAULTS.cacheSizeKiB}`);
    db.exec("CREATE TABLE IF NOT EXISTS readings (ts INTEGER NOT NULL, v REAL NOT NULL)");
    h = {
      db,
      insert: db.prepare("INSERT INTO readings (ts, v) VALUES (?, ?)"),
      begin: db.prepare("BEGIN"),
      commit: db.prepare("COMMIT"),
      savepoint: db.prepare("SAVEPOINT ev"),
    };
    this.#open.set(id, h);
    if (this.#open.size > this.#maxOpen) {
      const [oldId, old] = this.#open.entries().next().value!;
      old.db.close();
      this.#open.delete(oldId);
    }
    return h;
  }
  /**
   * Opens handles ahead of the timed part, as the runtime has its most recent agents active, and writes once to each
   * so its WAL file exists (the runtime's connection opens did the same untimed).
   */
  warm(agentIds: string[]): void {
    for (const id of agentIds) this.event(id, -1);
  }
  event(id: string, v: number): void {
    const h = this.#handle(id);
    h.begin.run();
    h.insert.run(Date.now(), v);
    h.commit.run();
  }
  /**
   * The group-commit ceiling: exactly the statements the runtime's group commit runs for `count` (up to nine)
   * queued events (one transaction; the first event's row, then a SAVEPOINT before each later event's row, released
   * by the COMMIT; the runtime releases deeper ones as their event ends), with no runtime around them.
   */
  group(id: string, first: number, count: number): void {
    const h = this.#handle(id);
    h.begin.run();
    h.insert.run(Date.now(), first);
    for (let k = 1; k < count; k++) {
      h.savepoint.run();
      h.insert.run(Date.now(), first + k);
    }
    h.commit.run();
  }
  close(): void {
    for (const h of this.#open.values()) h.db.close();
    this.#open.clear();
  }
}
