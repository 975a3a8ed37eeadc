import type Database from "better-sqlite3";
import { BridgeError } from "../errors/bridge-error.ts";
import { AGENT_ERRORS } from "./errors.ts";
import { storageError } from "./storage.ts";
import type { SqlValue } from "./types.ts";

// The `sql` tagged template of an agent database and the transaction state the runtime drives through it, apart from
// how the database file is opened (storage.ts): this is the hot path of every event (one BEGIN/COMMIT per batch, a
// SAVEPOINT per later event, the agent's own statements), while opening runs once per wake.

type Db = Database.Database;
type Statement = Database.Statement;

/**
 * A transaction control statement, after what SQLite skips before a statement's first keyword (whitespace, comments,
 * empty statements): COMMIT behind a comment or a semicolon still runs as COMMIT. The runner follows the transaction
 * state in JS, so a control statement that got past this test would leave it believing a transaction open that
 * SQLite already ended (or the reverse), with no failed statement to make it ask SQLite again.
 */
const TRANSACTION_CONTROL =
  /^(?:\s|;|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*(?:BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b/i;

function bind(value: SqlValue): null | number | bigint | string | Uint8Array {
  return typeof value === "boolean" ? (value ? 1 : 0) : value;
}

/** Runs a write with its values bound; short parameter lists skip the array and the spread call of the general case. */
function runBound(stmt: Statement, values: SqlValue[]): void {
  switch (values.length) {
    case 0:
      stmt.run();
      return;
    case 1:
      stmt.run(bind(values[0]));
      return;
    case 2:
      stmt.run(bind(values[0]), bind(values[1]));
      return;
    case 3:
      stmt.run(bind(values[0]), bind(values[1]), bind(values[2]));
      return;
    default:
      stmt.run(...values.map(bind));
  }
}

/**
 * The `sql` tagged template of one database. Values are always bound parameters, never spliced into the text.
 * Statements are cached by the template's strings array, which JavaScript keeps identical for one call site.
 */
export class SqlRunner {
  readonly db: Db;
  readonly #cache = new WeakMap<TemplateStringsArray, Statement>();
  readonly #byText = new Map<string, Statement>();
  #begin: Statement | undefined;
  #commit: Statement | undefined;
  /** The last other control statement run and its text: a group commit repeats one SAVEPOINT per event. */
  #lastControl: Statement | undefined;
  #lastControlText = "";
  #lastStrings: TemplateStringsArray | undefined;
  #lastStmt: Statement | undefined;
  /** A transaction was begun lazily and nothing has been written yet, so SQLite has not seen its BEGIN. */
  #lazy = false;
  /** Savepoints opened while lazy, issued to SQLite (after BEGIN) by the first write. */
  readonly #pendingSavepoints: string[] = [];
  /**
   * SQLite's transaction state as this runner drove it (BEGIN issued, no COMMIT or ROLLBACK since): asking SQLite
   * (`db.inTransaction`, a native call) two or three times per event was a visible share of a one-event batch.
   */
  #begun = false;
  /**
   * Something this runner cannot follow happened since the last BEGIN: a statement failed (SQLite may then have
   * rolled the whole transaction back on its own, e.g. SQLITE_FULL while spilling), a savepoint opened outside a
   * transaction (which begins one), or a control statement in a form #track does not follow. Until the next BEGIN,
   * the state is asked of SQLite.
   */
  #untracked = false;
  /**
   * SQLite rolled back, on its own, a transaction this runner began (a failed `INSERT OR ROLLBACK`, SQLITE_FULL while
   * spilling), and the runtime has not ended it yet. A write now would run outside any transaction and commit at once,
   * ahead of an event that is going to fail (its handler may catch the error and write on), so writes are refused until
   * the runtime ends the transaction (rollback(), beginLazy or BEGIN). Reads still run.
   */
  #lost = false;

  constructor(db: Db) {
    this.db = db;
  }

  /**
   * Opens a transaction that reaches SQLite only with the first statement that writes. An event that writes nothing
   * (a task-progress event that only sends frames) then costs no BEGIN/COMMIT at all; one that writes gets its
   * BEGIN and savepoints just before that write, so its writes still commit together.
   */
  beginLazy(): void {
    if (this.#lazy || this.#sqliteInTransaction()) {
      throw new BridgeError(AGENT_ERRORS.STORAGE, "a transaction is already open", {});
    }
    this.#lazy = true;
    this.#lost = false;
    this.#pendingSavepoints.length = 0;
  }

  /**
   * Ends the open transaction after a failure: ROLLBACK when SQLite still holds it, otherwise (SQLite rolled it back
   * on its own) only the runner's note that it was lost.
   */
  rollback(): void {
    this.#lost = false;
    if (this.inTransaction) this.control("ROLLBACK");
  }

  /** Closes the handle; nothing is open afterwards, as SQLite answers for a closed handle. */
  close(): void {
    this.#lazy = false;
    this.#begun = false;
    this.#untracked = false;
    this.#lost = false;
    this.#pendingSavepoints.length = 0;
    this.db.close();
  }

  /** True while a transaction is open, whether begun in SQLite or still lazy. */
  get inTransaction(): boolean {
    return this.#lazy || this.#sqliteInTransaction();
  }

  /** True when the open transaction has reached SQLite (something was written). */
  get wrote(): boolean {
    return !this.#lazy && this.#sqliteInTransaction();
  }

  #sqliteInTransaction(): boolean {
    return this.#untracked ? this.db.inTransaction : this.#begun;
  }

  /** Follows the transaction state through a control statement that SQLite just ran without error. */
  #track(text: string): void {
    if (text === "BEGIN") {
      this.#begun = true;
      this.#untracked = false;
      this.#lost = false;
    } else if (text === "COMMIT" || text === "ROLLBACK" || text === "END") {
      this.#begun = false;
    } else if (
      !this.#begun ||
      !(text.startsWith("SAVEPOINT ") || text.startsWith("RELEASE ") || text.startsWith("ROLLBACK TO "))
    ) {
      // A savepoint outside a transaction begins one, and a form not followed here (BEGIN IMMEDIATE, COMMIT
      // TRANSACTION, lower case) may begin or end one: SQLite is asked until the next BEGIN. A savepoint inside a
      // BEGIN never ends the transaction. #begun is dropped too, so a later fault cannot mistake a transaction
      // ended this way for one SQLite lost (#lost).
      this.#untracked = true;
      this.#begun = false;
    }
  }

  /** Issues a lazy transaction's BEGIN and savepoints before a statement that may write. */
  #materialize(stmt: Statement): void {
    if (!this.#lazy) {
      if (this.#lost && !stmt.readonly) {
        throw new BridgeError(AGENT_ERRORS.STORAGE, "the transaction was lost: SQLite rolled it back", {});
      }
      return;
    }
    if (stmt.readonly) return;
    this.#lazy = false;
    this.#exec("BEGIN");
    const pending = this.#pendingSavepoints;
    for (const name of pending) this.#exec(`SAVEPOINT ${name}`);
    pending.length = 0;
  }

  /** Transaction control while lazy: nothing was written, so it only moves the pending savepoint stack. */
  #lazyControl(text: string): boolean {
    // SQLite would accept it (its BEGIN is still to come), and the lazy transaction's own BEGIN then fail later.
    if (text === "BEGIN") throw new BridgeError(AGENT_ERRORS.STORAGE, "a transaction is already open", {});
    if (text === "COMMIT" || text === "ROLLBACK" || text === "END") {
      this.#lazy = false;
      this.#pendingSavepoints.length = 0;
      return true;
    }
    const m = /^(SAVEPOINT|RELEASE|ROLLBACK TO) (\w+)$/.exec(text);
    if (m === null) return false;
    const [, verb, name] = m;
    if (verb === "SAVEPOINT") {
      this.#pendingSavepoints.push(name);
      return true;
    }
    const at = this.#pendingSavepoints.lastIndexOf(name);
    if (at < 0) throw new BridgeError(AGENT_ERRORS.STORAGE, `no such savepoint: ${name}`, { savepoint: name });
    // RELEASE drops the savepoint and those inside it; ROLLBACK TO keeps it and drops those inside it.
    this.#pendingSavepoints.length = verb === "RELEASE" ? at : at + 1;
    return true;
  }

  #exec(text: string): void {
    let stmt: Statement | undefined;
    // BEGIN and COMMIT run once per batch, SAVEPOINT once per later event: held in fields, so the hot path reads this
    // object only and not the statement map's table as well (with many agents active, each agent's map is one more
    // cache miss per event).
    if (text === "BEGIN") stmt = this.#begin ??= this.prepare(text);
    else if (text === "COMMIT") stmt = this.#commit ??= this.prepare(text);
    else if (text === this.#lastControlText && this.#lastControl !== undefined) stmt = this.#lastControl;
    else {
      stmt = this.#lastControl = this.prepare(text);
      this.#lastControlText = text;
    }
    stmt.run();
    this.#track(text);
  }

  /** A statement failed: see #untracked. */
  #fault(err: unknown, what: string): unknown {
    this.#untracked = true;
    // The one native call of the fault path: did SQLite end the transaction this runner began? (see #lost)
    if (this.#begun && !this.#lazy && !this.db.inTransaction) {
      this.#begun = false;
      this.#lost = true;
    }
    return storageError(err, what);
  }

  /**
   * Runs one statement of the agent's `sql`. `refuseWrite`, when given, is called before a statement that may write
   * (`statement.readonly` false) and throws to refuse it (a readonly connection's event, readonly-guard.ts): before
   * the lazy BEGIN, and outside the fault path, as SQLite ran nothing and the transaction state is as it was.
   */
  tagged<Row>(strings: TemplateStringsArray, values: SqlValue[], refuseWrite?: () => void): Row[] {
    const stmt = this.#statementOf(strings);
    if (refuseWrite !== undefined && !stmt.readonly) refuseWrite();
    try {
      this.#materialize(stmt);
      if (stmt.reader) return stmt.all(...values.map(bind)) as Row[];
      runBound(stmt, values);
      return [];
    } catch (err) {
      throw this.#fault(err, "sql");
    }
  }

  /** The prepared statement of a `sql` template, cached by its strings array. */
  #statementOf(strings: TemplateStringsArray): Statement {
    // The last template used is checked first: an agent's hot handler repeats one statement, and this skips the
    // WeakMap's hash lookup (see #exec on cache misses with many agents).
    let stmt = strings === this.#lastStrings ? this.#lastStmt : this.#cache.get(strings);
    try {
      if (stmt === undefined) {
        const text = strings.join("?");
        // The runtime owns transactions (one per batch, a savepoint per event); agent code uses transaction().
        if (TRANSACTION_CONTROL.test(text)) {
          throw new BridgeError(AGENT_ERRORS.STORAGE, "sql may not control transactions; use transaction()", {
            statement: text.slice(0, 40),
          });
        }
        stmt = this.db.prepare(text);
        this.#cache.set(strings, stmt);
      }
    } catch (err) {
      throw this.#fault(err, "sql");
    }
    this.#lastStrings = strings;
    this.#lastStmt = stmt;
    return stmt;
  }

  /** Runs a parameterless control statement (BEGIN, COMMIT, SAVEPOINT ...): the hot path of every event. */
  control(text: string): void {
    try {
      if (this.#lazy && this.#lazyControl(text)) return;
      this.#exec(text);
    } catch (err) {
      throw this.#fault(err, text);
    }
  }

  /** A cached statement by text, for the runtime's own queries. */
  prepare(text: string): Statement {
    let stmt = this.#byText.get(text);
    if (stmt === undefined) {
      stmt = this.db.prepare(text);
      this.#byText.set(text, stmt);
    }
    return stmt;
  }

  run(text: string, ...params: Array<null | number | bigint | string | Uint8Array>): Database.RunResult {
    try {
      const stmt = this.prepare(text);
      this.#materialize(stmt);
      return stmt.run(...params);
    } catch (err) {
      throw this.#fault(err, text.split(" ", 2).join(" "));
    }
  }

  all<Row>(text: string, ...params: Array<null | number | bigint | string | Uint8Array>): Row[] {
    try {
      const stmt = this.prepare(text);
      this.#materialize(stmt);
      return stmt.all(...params) as Row[];
    } catch (err) {
      throw this.#fault(err, text.split(" ", 2).join(" "));
    }
  }

  get<Row>(text: string, ...params: Array<null | number | bigint | string | Uint8Array>): Row | undefined {
    try {
      const stmt = this.prepare(text);
      this.#materialize(stmt);
      return stmt.get(...params) as Row | undefined;
    } catch (err) {
      throw this.#fault(err, text.split(" ", 2).join(" "));
    }
  }
}
