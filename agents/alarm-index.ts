import type { Logger } from "pino";
import type { RuntimeDb } from "./runtime-db.ts";
import type { Clock } from "./types.ts";

/**
 * The longest the one timer waits before looking at the wall clock again. Alarm times are wall-clock times, while
 * Node's timers run on a monotonic clock: when the wall clock jumps forward (an NTP correction on a gateway that has
 * no real-time clock), an alarm it jumped past is due now, and is noticed within this long. One timer per runtime, so
 * the cost is one wake-up a minute.
 */
export const ALARM_RECHECK_MS = 60_000;

/**
 * First wait before an alarm write that runtime.db refused is tried again, ms; it doubles with each retry that fails,
 * up to the max, so a lasting fault costs one write a minute, not a loop.
 */
export const ALARM_WRITE_RETRY_FIRST_MS = 1_000;
export const ALARM_WRITE_RETRY_MAX_MS = ALARM_RECHECK_MS;

/**
 * An agent's alarm backoff: the work that was due when its event failed as a whole (due at or before
 * `heldThrough`, wall-clock ms, the time of that failure) waits until `until`; work due later is not held.
 */
export interface AlarmBackoff {
  readonly heldThrough: number;
  readonly until: number;
}

/** Marks an agent whose alarm fired but whose stored row stays until the agent recomputes it (a crash re-fires). */
const FIRED = -1;

/**
 * ONE index of the next alarm of every agent: a min-heap with lazy deletion plus one timer, mirrored in the runtime
 * database. Sleeping agents cost a map entry, not a timer. Writes are ahead of the agents' commits, so the index may
 * wake an agent early (it finds nothing due and recomputes) but never late.
 *
 * Memory is what fires: an alarm is set there before its row is written, and a write runtime.db refuses (a storage
 * fault) is tried again later with backoff (ALARM_WRITE_RETRY_FIRST_MS), the latest value of each agent's row, until it
 * lands. Without that, a refused write left the agent with no alarm at all: the backoff of an alarm or queue event
 * that failed as a whole was never set, and a sleeping agent's due work waited for another event or a restart.
 * Only the write-ahead of a new schedule (lowerTo) still throws, so the schedule that needs it fails and rolls back
 * rather than commit with no row to wake its agent after a crash.
 */
export class AlarmIndex {
  readonly #db: RuntimeDb;
  readonly #clock: Clock;
  readonly #fire: (agentIds: string[]) => void;
  readonly #logger: Logger;
  readonly #times = new Map<string, number>();
  /**
   * The time of each alarm that fired (FIRED in #times): its row keeps it until the agent recomputes its alarm after
   * the alarm event, so a crash before that event commits fires it again at the next start (see lowerTo).
   */
  readonly #firedAt = new Map<string, number>();
  readonly #pending = new Set<string>();
  /**
   * Agents whose alarm or queue event failed as a whole (see backOff): how many such failures in a row, and the hold
   * on the work that was due then. Dropped when the agent's alarm goes away: nothing is left due, so the run of
   * failures ended.
   */
  readonly #backoff = new Map<string, AlarmBackoff & { failures: number }>();
  #heap: Array<{ id: string; t: number }> = [];
  #timer: unknown = null;
  #timerAt = Number.POSITIVE_INFINITY;
  #running = false;
  /** Rows runtime.db refused to write: the value each agent's row should have (null: no row), tried again later. */
  readonly #unsaved = new Map<string, number | null>();
  /**
   * Agents forgotten (destroyed) whose rows runtime.db refused to delete: deleted again later with the refused writes,
   * and before any row of an agent made again under the same id is written (#deleteForgotten), so the retry never
   * deletes the new agent's rows. Left in runtime.db, they would wake the destroyed agent at the next start and make
   * it again.
   */
  readonly #forgotten = new Set<string>();
  #retryTimer: unknown = null;
  #retryDelayMs = ALARM_WRITE_RETRY_FIRST_MS;
  /** Agents whose backoff took a step in the current turn of the event loop (see backOff); emptied by a microtask. */
  readonly #steppedThisTurn = new Set<string>();

  constructor(db: RuntimeDb, clock: Clock, fire: (agentIds: string[]) => void, logger: Logger) {
    this.#db = db;
    this.#clock = clock;
    this.#fire = fire;
    this.#logger = logger;
    for (const { agentId, at } of db.alarms()) {
      this.#times.set(agentId, at);
      this.#push({ id: agentId, t: at });
    }
    for (const id of db.pendingAgents()) this.#pending.add(id);
  }

  /** Starts firing (runtime.start): alarms missed while the process was down fire now. */
  start(): void {
    this.#running = true;
    this.#arm();
    if (this.#hasUnsaved()) this.#armRetry();
  }

  stop(): void {
    this.#running = false;
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerAt = Number.POSITIVE_INFINITY;
    if (this.#retryTimer !== null) this.#clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
  }

  /**
   * One last try of the rows runtime.db refused (the shutdown, before it closes the database): what still fails is
   * lost with the process, and the next start finds those agents by their pending mark or their next event.
   */
  saveUnsaved(): void {
    if (this.#hasUnsaved()) this.#retryWrites();
  }

  /** Some write or delete runtime.db refused waits for its retry. */
  #hasUnsaved(): boolean {
    return this.#unsaved.size > 0 || this.#forgotten.size > 0;
  }

  get(agentId: string): number | undefined {
    const t = this.#times.get(agentId);
    return t === FIRED ? undefined : t;
  }

  /**
   * Sets the agent's next alarm exactly (after its commit); null removes it. A time the agent's backoff holds (due by
   * its `heldThrough`) becomes the backoff's end (see backOff); a later one is set as it is. Never throws for a write
   * runtime.db refuses: the alarm is set in memory and its row written later (see the class comment).
   */
  set(agentId: string, at: number | null): void {
    this.#set(agentId, at);
  }

  /** set, returning the error of a row write runtime.db refused (undefined when it was written or left as it was). */
  #set(agentId: string, at: number | null): unknown {
    if (this.#backoff.size > 0) {
      const backoff = this.#backoffInForce(agentId);
      // Nothing left due: the backoff has nothing to hold back, and a later failure starts a new run of them (kept,
      // its entry would never be cleared and a failure days later would wait the old run's next, longer step).
      if (at === null) this.#backoff.delete(agentId);
      else if (backoff !== undefined && at <= backoff.heldThrough) at = backoff.until;
    }
    const current = this.#times.get(agentId);
    if (at === null) {
      if (current === undefined) return undefined;
      this.#times.delete(agentId);
    } else {
      if (current === at) return undefined;
      this.#times.set(agentId, at);
      this.#push({ id: agentId, t: at });
    }
    this.#firedAt.delete(agentId);
    this.#arm();
    return this.#write(agentId, at);
  }

  /**
   * Write-ahead of a new schedule at `at` (schedules.ts, before its INSERT): when the agent's row does not already wake
   * it by then, the alarm moves earlier and its row is written now. Throws when runtime.db refuses that row, so the
   * schedule fails rather than commit with no row to wake its agent after a crash; the earlier alarm stays in memory
   * and its row is written later all the same (an early wake finds nothing due).
   *
   * What counts is the row, not only memory: one runtime.db refused earlier (memory is ahead of it) is written first,
   * or a schedule after the refused alarm would commit with no row at all; and a fired alarm's row stays at its time
   * (FIRED in memory), which a schedule set by the alarm event itself must not raise: a crash before that event
   * commits would leave the work it was running to wait for the new, later time.
   */
  lowerTo(agentId: string, at: number): void {
    const current = this.#times.get(agentId);
    const meant = current === FIRED ? this.#firedAt.get(agentId) : current;
    let err: unknown;
    if (meant === undefined || at < meant) err = this.#set(agentId, at);
    // The alarm (or the fired one's row) wakes the agent by `at`: only a row runtime.db refused, still behind it, has
    // to land first.
    else if (this.#unsaved.has(agentId)) err = this.#write(agentId, meant);
    if (err !== undefined) throw err;
  }

  /**
   * Writes the agent's row; one runtime.db refuses is kept for #retryWrites (the first of a run of refusals is logged,
   * the rest are the retries' to report). Returns the error, undefined when the row was written.
   */
  #write(agentId: string, at: number | null): unknown {
    const quiet = this.#hasUnsaved();
    try {
      this.#deleteForgotten(agentId);
      this.#db.setAlarm(agentId, at);
    } catch (err) {
      if (!quiet) {
        this.#logger.warn(
          { err, agent: agentId, retryInMs: this.#retryDelayMs },
          "runtime.db refused an alarm write; the alarm stays set in memory and its row is written later",
        );
      }
      this.#unsaved.set(agentId, at);
      this.#armRetry();
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
  #deleteForgotten(agentId: string): void {
    if (this.#forgotten.size === 0 || !this.#forgotten.has(agentId)) return;
    this.#db.deleteAgent(agentId);
    this.#forgotten.delete(agentId);
  }

  #armRetry(): void {
    if (!this.#running || this.#retryTimer !== null) return;
    this.#retryTimer = this.#clock.setTimeout(() => {
      this.#retryTimer = null;
      this.#retryWrites();
    }, this.#retryDelayMs);
  }

  /**
   * Deletes the destroyed agents' refused rows, then writes the refused rows again, in the order they were refused;
   * stops at the first refusal and backs off.
   */
  #retryWrites(): void {
    try {
      for (const agentId of [...this.#forgotten]) this.#deleteForgotten(agentId);
      for (const [agentId, at] of [...this.#unsaved]) {
        this.#db.setAlarm(agentId, at);
        this.#unsaved.delete(agentId);
      }
    } catch (err) {
      this.#retryDelayMs = Math.min(ALARM_WRITE_RETRY_MAX_MS, this.#retryDelayMs * 2);
      this.#logger.warn(
        { err, unsaved: this.#unsaved.size + this.#forgotten.size, retryInMs: this.#retryDelayMs },
        "runtime.db still refuses alarm writes; the alarms stay set in memory",
      );
      this.#armRetry();
      return;
    }
    this.#writesWorkAgain();
  }

  /** Every refused row is written: the retries stop, and the next refusal starts again at the first delay. */
  #writesWorkAgain(): void {
    this.#stopRetries();
    this.#logger.info("runtime.db takes alarm writes again");
  }

  #stopRetries(): void {
    if (this.#retryTimer !== null) this.#clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#retryDelayMs = ALARM_WRITE_RETRY_FIRST_MS;
  }

  /**
   * The agent's alarm or queue event failed as a whole (runtime-alarms.ts): its alarm is set `delayMs(failures)`
   * from now, `failures` counting this one and those before it in a row, and the work that was due now (schedules
   * and queue items due by `heldThrough`) waits until then: no recomputation moves the alarm earlier for it, and the
   * alarm and queue events leave it alone meanwhile (schedules.ts, queue.ts), until clearBackoff (or the alarm goes
   * away, see set). Without the hold, the failed event's own bookkeeping (the next alarm recomputed from a queue item
   * or schedule still due) set it in the past, so the alarm fired again at once, and a fault that persists became a
   * loop. Work due later (a schedule the agent sets after the failure) is not held: it is not what failed, and
   * holding it made a schedule set for 10 s from now wait up to the 5 min of the backoff; but a queue item queued
   * after a held one still waits behind it, as first attempts run in sequence order (queue.ts). Returns the failures
   * in a row and the delay chosen.
   *
   * Failures in one turn of the event loop count once: the outcomes of one batch are given in one turn
   * (cell-batch.ts, commitBatch; a failed wake's, cell-mailbox.ts), so an alarm event and a queue flush that failed
   * together are one fault seen once, not a retry that failed again; counted twice, the first retry waited 2 s.
   */
  backOff(agentId: string, delayMs: (failures: number) => number): { failures: number; delayMs: number } {
    const previous = this.#backoffInForce(agentId);
    if (previous !== undefined && this.#steppedThisTurn.has(agentId)) {
      return { failures: previous.failures, delayMs: previous.until - previous.heldThrough };
    }
    if (this.#steppedThisTurn.size === 0) queueMicrotask(() => this.#steppedThisTurn.clear());
    this.#steppedThisTurn.add(agentId);
    const failures = (previous?.failures ?? 0) + 1;
    const delay = delayMs(failures);
    const now = this.#clock.now();
    // Everything due by now: what an earlier failure held (due by its own, earlier time, see #backoffInForce) too.
    const heldThrough = now;
    const until = now + delay;
    this.#backoff.set(agentId, { until, heldThrough, failures });
    this.set(agentId, until);
    return { failures, delayMs: delay };
  }

  /** The agent's backoff, while it has one (see backOff). */
  backoffOf(agentId: string): AlarmBackoff | undefined {
    return this.#backoff.size === 0 ? undefined : this.#backoffInForce(agentId);
  }

  /**
   * The agent's backoff entry, dropped once the wall clock reads earlier than the failure it records (it stepped
   * back, an NTP correction): its times belong to the clock before the step, so kept, the hold would last as long as
   * the step, and with it the agent's queue (the items behind a held one wait, queue.ts), an hour back an hour of a
   * queue that does not move. As after a restart, the held work runs at the agent's next flush or alarm (which the
   * timer makes due within ALARM_RECHECK_MS, see #endSteppedBack), and a lasting fault backs off again from 1 s.
   */
  #backoffInForce(agentId: string): (AlarmBackoff & { failures: number }) | undefined {
    const backoff = this.#backoff.get(agentId);
    if (backoff === undefined || this.#clock.now() >= backoff.heldThrough) return backoff;
    this.#backoff.delete(agentId);
    return undefined;
  }

  /**
   * The due time through which the agent's work is held back at `now` (its schedules and queue items due by then
   * wait), or null when no backoff is in force.
   */
  heldThrough(agentId: string, now: number): number | null {
    const backoff = this.backoffOf(agentId);
    return backoff !== undefined && now < backoff.until ? backoff.heldThrough : null;
  }

  /**
   * An alarm event of the agent committed: its backoff ends, once it is over. One that ran before (a schedule set
   * after the failure fell due first) left the held work alone, so the hold stays for it.
   */
  clearBackoff(agentId: string): void {
    const backoff = this.backoffOf(agentId);
    if (backoff !== undefined && this.#clock.now() >= backoff.until) this.#backoff.delete(agentId);
  }

  markPending(agentId: string): void {
    if (this.#pending.has(agentId)) return;
    // Before the mark (and the directory entries that follow it, cell-state.ts): see #forgotten.
    this.#deleteForgotten(agentId);
    this.#db.setPending(agentId, true);
    this.#pending.add(agentId);
  }

  clearPending(agentId: string): void {
    if (!this.#pending.delete(agentId)) return;
    this.#db.setPending(agentId, false);
  }

  isPending(agentId: string): boolean {
    return this.#pending.has(agentId);
  }

  pendingAgents(): string[] {
    return [...this.#pending];
  }

  /**
   * Drops the agent's alarm, pending mark and directory entries (destroyAgent); true when it had any. Never throws: a
   * delete runtime.db refuses is tried again later (see #forgotten), as a refused alarm write is, so a destroy still
   * removes the agent's files rather than fail half done; false then means none was known in memory.
   */
  forget(agentId: string): boolean {
    let had = this.#times.delete(agentId);
    this.#firedAt.delete(agentId);
    // A refused row written later would bring back an alarm for an agent that is gone.
    this.#unsaved.delete(agentId);
    if (this.#pending.delete(agentId)) had = true;
    this.#backoff.delete(agentId);
    // Its timer is not left armed for it, nor the retries for its rows alone.
    this.#arm();
    try {
      this.#forgotten.delete(agentId);
      if (this.#db.deleteAgent(agentId)) had = true;
    } catch (err) {
      if (!this.#hasUnsaved()) {
        this.#logger.warn(
          { err, agent: agentId, retryInMs: this.#retryDelayMs },
          "runtime.db refused to delete a destroyed agent's rows; they are deleted later",
        );
      }
      this.#forgotten.add(agentId);
      this.#armRetry();
      return had;
    }
    if (!this.#hasUnsaved()) this.#stopRetries();
    return had;
  }

  get size(): number {
    return this.#times.size;
  }

  #valid(e: { id: string; t: number }): boolean {
    return this.#times.get(e.id) === e.t;
  }

  #arm(): void {
    if (!this.#running) return;
    while (this.#heap.length > 0 && !this.#valid(this.#heap[0])) this.#pop();
    const next = this.#heap.length > 0 ? this.#heap[0].t : Number.POSITIVE_INFINITY;
    if (next === this.#timerAt && this.#timer !== null) return;
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerAt = next;
    if (next === Number.POSITIVE_INFINITY) return;
    const delay = Math.min(ALARM_RECHECK_MS, Math.max(0, next - this.#clock.now()));
    this.#timer = this.#clock.setTimeout(() => this.#onTimer(), delay);
  }

  #onTimer(): void {
    this.#timer = null;
    this.#timerAt = Number.POSITIVE_INFINITY;
    const now = this.#clock.now();
    this.#endSteppedBack(now);
    const due: string[] = [];
    while (this.#heap.length > 0 && this.#heap[0].t <= now) {
      const e = this.#pop();
      if (this.#valid(e)) {
        this.#times.set(e.id, FIRED);
        this.#firedAt.set(e.id, e.t);
        due.push(e.id);
      }
    }
    if (due.length > 0) this.#fire(due);
    this.#arm();
  }

  /**
   * Ends the backoffs the wall clock stepped back behind (see #backoffInForce) at each timer, not only when something
   * asks for one: an agent with nothing else going on would otherwise wait for its alarm, set to the backoff's end on
   * the clock before the step, so its held queue items (due whatever the clock says) ran as long as the step later.
   * Its alarm is due now instead, within ALARM_RECHECK_MS of the step; the alarm event runs what is due and sets the
   * alarm again from the agent's rows.
   */
  #endSteppedBack(now: number): void {
    if (this.#backoff.size === 0) return;
    for (const [agentId, backoff] of this.#backoff) {
      if (now >= backoff.heldThrough) continue;
      this.#backoff.delete(agentId);
      const at = this.#times.get(agentId);
      // An alarm the backoff did not set (later than its end) is left as it is; a fired one is being acted on.
      if (at === undefined || at === FIRED || at <= now || at > backoff.until) continue;
      this.#times.set(agentId, now);
      this.#push({ id: agentId, t: now });
      // In the timer: a refused write must not throw out of it (it is tried again later, see #write).
      this.#write(agentId, now);
    }
  }

  #push(e: { id: string; t: number }): void {
    // Stale entries are dropped lazily; compact when they dominate so the heap stays proportional to live alarms.
    if (this.#heap.length > 64 && this.#heap.length > 4 * this.#times.size) {
      this.#heap = this.#heap.filter((x) => this.#valid(x));
      this.#heap.sort((a, b) => a.t - b.t);
    }
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p].t <= h[i].t) break;
      [h[p], h[i]] = [h[i], h[p]];
      i = p;
    }
  }

  #pop(): { id: string; t: number } {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l].t < h[m].t) m = l;
        if (r < h.length && h[r].t < h[m].t) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i], h[m]];
        i = m;
      }
    }
    return top;
  }
}
