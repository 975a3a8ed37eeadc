import type { Logger } from "pino";
import { BackoffTimer } from "./backoff-timer.ts";
import type { RuntimeDb } from "./runtime-db.ts";
import type { Clock } from "./types.ts";

/**
 * First wait before an alarm write that runtime.db refused is tried again, ms; it doubles with each retry that fails,
 * up to the max, so a lasting fault costs one write a minute, not a loop.
 */
export const ALARM_WRITE_RETRY_FIRST_MS = 1_000;
export const ALARM_WRITE_RETRY_MAX_MS = 60_000;

/**
 * The alarm index's rows in runtime.db (alarm-index.ts): writes and deletes that runtime.db refuses (a storage fault)
 * are kept and tried again later with backoff, the latest value of each agent's row, until they land. The index sets
 * an alarm in memory before it asks for the row, so a refusal here never leaves an agent without an alarm; only the
 * index decides when a refusal must fail its caller (the write-ahead of a new schedule).
 */
export class AlarmRows {
  readonly #db: RuntimeDb;
  readonly #logger: Logger;
  /** Armed only between the index's start and stop. */
  readonly #retry: BackoffTimer;
  /** Rows runtime.db refused to write: the value each agent's row should have (null: no row), tried again later. */
  readonly #unsaved = new Map<string, number | null>();
  /**
   * Agents forgotten (destroyed) whose rows runtime.db refused to delete: deleted again later with the refused writes,
   * and before any row of an agent made again under the same id is written (deleteForgotten), so the retry never
   * deletes the new agent's rows. Left in runtime.db, they would wake the destroyed agent at the next start and make
   * it again.
   */
  readonly #forgotten = new Set<string>();

  constructor(db: RuntimeDb, clock: Clock, logger: Logger) {
    this.#db = db;
    this.#logger = logger;
    const retryWrites = () => this.#retryWrites();
    this.#retry = new BackoffTimer(clock, ALARM_WRITE_RETRY_FIRST_MS, ALARM_WRITE_RETRY_MAX_MS, retryWrites, false);
  }

  /** Retries may run from now on (the index's start); ones refused before run after the first delay. */
  start(): void {
    this.#retry.enable();
    if (this.#hasUnsaved()) this.#retry.arm();
  }

  stop(): void {
    this.#retry.disable();
  }

  /**
   * One last try of the rows runtime.db refused (the shutdown, before it closes the database): what still fails is
   * lost with the process, and the next start finds those agents by their pending mark or their next event.
   */
  saveUnsaved(): void {
    if (this.#hasUnsaved()) this.#retryWrites();
  }

  /** A row of the agent that runtime.db refused waits for its retry: memory is ahead of runtime.db. */
  isUnsaved(agentId: string): boolean {
    return this.#unsaved.has(agentId);
  }

  /**
   * Writes the agent's row; one runtime.db refuses is kept for the retries (the first of a run of refusals is logged,
   * the rest are the retries' to report). Returns the error, undefined when the row was written.
   */
  write(agentId: string, at: number | null): unknown {
    const quiet = this.#hasUnsaved();
    try {
      this.deleteForgotten(agentId);
      this.#db.setAlarm(agentId, at);
    } catch (err) {
      if (!quiet) {
        this.#logger.warn(
          { err, agent: agentId, retryInMs: this.#retry.delayMs },
          "runtime.db refused an alarm write; the alarm stays set in memory and its row is written later",
        );
      }
      this.#unsaved.set(agentId, at);
      this.#retry.arm();
      return err;
    }
    // Its latest value is written: an older refused one must not be written over it.
    if (this.#unsaved.delete(agentId) && !this.#hasUnsaved()) this.#writesWorkAgain();
    return undefined;
  }

  /**
   * Deletes the rows of a destroyed agent of the same id that runtime.db refused to delete (see #forgotten), before
   * the first row of this one is written; throws what runtime.db throws.
   */
  deleteForgotten(agentId: string): void {
    if (this.#forgotten.size === 0 || !this.#forgotten.has(agentId)) return;
    this.#db.deleteAgent(agentId);
    this.#forgotten.delete(agentId);
  }

  /**
   * Deletes every row of a destroyed agent; true when runtime.db had any. Never throws: a delete runtime.db refuses is
   * tried again later (see #forgotten), so a destroy still removes the agent's files rather than fail half done.
   */
  deleteAgent(agentId: string): boolean {
    // A refused row written later would bring back an alarm for an agent that is gone.
    this.#unsaved.delete(agentId);
    let had = false;
    try {
      this.#forgotten.delete(agentId);
      had = this.#db.deleteAgent(agentId);
    } catch (err) {
      if (!this.#hasUnsaved()) {
        this.#logger.warn(
          { err, agent: agentId, retryInMs: this.#retry.delayMs },
          "runtime.db refused to delete a destroyed agent's rows; they are deleted later",
        );
      }
      this.#forgotten.add(agentId);
      this.#retry.arm();
      return false;
    }
    // Not the retries for its rows alone.
    if (!this.#hasUnsaved()) this.#retry.reset();
    return had;
  }

  /** Some write or delete runtime.db refused waits for its retry. */
  #hasUnsaved(): boolean {
    return this.#unsaved.size > 0 || this.#forgotten.size > 0;
  }

  /**
   * Deletes the destroyed agents' refused rows, then writes the refused rows again, in the order they were refused;
   * stops at the first refusal and backs off.
   */
  #retryWrites(): void {
    try {
      for (const agentId of [...this.#forgotten]) this.deleteForgotten(agentId);
      for (const [agentId, at] of [...this.#unsaved]) {
        this.#db.setAlarm(agentId, at);
        this.#unsaved.delete(agentId);
      }
    } catch (err) {
      this.#retry.backOff();
      this.#logger.warn(
        { err, unsaved: this.#unsaved.size + this.#forgotten.size, retryInMs: this.#retry.delayMs },
        "runtime.db still refuses alarm writes; the alarms stay set in memory",
      );
      return;
    }
    this.#writesWorkAgain();
  }

  /** Every refused row is written: the retries stop, and the next refusal starts again at the first delay. */
  #writesWorkAgain(): void {
    this.#retry.reset();
    this.#logger.info("runtime.db takes alarm writes again");
  }
}
