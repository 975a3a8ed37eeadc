import type { Logger } from "pino";
import { AlarmRows } from "./alarm-rows.ts";
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
 * An agent's alarm backoff: the work that was due when its event failed as a whole (due at or before
 * `heldThrough`, wall-clock ms, the time of that failure) waits until `until`; work due later is not held. Wall-clock
 * times though kept in memory, unlike the runtime's other backoffs: they are compared with the stored due times of
 * schedules and queue items and set the agent's alarm (a step back is handled in #backoffInForce).
 */
export interface AlarmBackoff {
  readonly heldThrough: number;
  readonly until: number;
}

/**
 * Marks an agent whose alarm fired but whose stored row stays until the agent recomputes it (a crash re-fires). No
 * alarm time can equal it: -1 did, so a schedule at new Date(-1) set by the alarm event read as unchanged and never
 * ran.
 */
const FIRED = Number.NEGATIVE_INFINITY;

/**
 * ONE index of the next alarm of every agent: a min-heap with lazy deletion plus one timer, mirrored in the runtime
 * database. Sleeping agents cost a map entry, not a timer. Writes are ahead of the agents' commits, so the index may
 * wake an agent early (it finds nothing due and recomputes) but never late.
 *
 * Memory is what fires: an alarm is set there before its row is written, and a write runtime.db refuses (a storage
 * fault) is tried again later with backoff (alarm-rows.ts), the latest value of each agent's row, until it
 * lands. Without that, a refused write left the agent with no alarm at all: the backoff of an alarm or queue event
 * that failed as a whole was never set, and a sleeping agent's due work waited for another event or a restart.
 * Only the write-ahead of a new schedule (lowerTo) still throws, so the schedule that needs it fails and rolls back
 * rather than commit with no row to wake its agent after a crash.
 */
export class AlarmIndex {
  readonly #db: RuntimeDb;
  readonly #rows: AlarmRows;
  readonly #clock: Clock;
  readonly #fire: (agentIds: string[]) => void;
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
  /** Agents whose backoff took a step in the current turn of the event loop (see backOff); emptied by a microtask. */
  readonly #steppedThisTurn = new Set<string>();

  constructor(db: RuntimeDb, clock: Clock, fire: (agentIds: string[]) => void, logger: Logger) {
    this.#db = db;
    this.#clock = clock;
    this.#fire = fire;
    this.#rows = new AlarmRows(db, clock, logger);
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
    this.#rows.start();
  }

  stop(): void {
    this.#running = false;
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerAt = Number.POSITIVE_INFINITY;
    this.#rows.stop();
  }

  /**
   * One last try of the rows runtime.db refused (the shutdown, before it closes the database): what still fails is
   * lost with the process, and the next start finds those agents by their pending mark or their next event.
   */
  saveUnsaved(): void {
    this.#rows.saveUnsaved();
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
    return this.#rows.write(agentId, at);
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
    else if (this.#rows.isUnsaved(agentId)) err = this.#rows.write(agentId, meant);
    if (err !== undefined) throw err;
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
    // Before the mark (and the directory entries that follow it, cell-state.ts): see alarm-rows.ts, deleteForgotten.
    this.#rows.deleteForgotten(agentId);
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
   * delete runtime.db refuses is tried again later (alarm-rows.ts), as a refused alarm write is, so a destroy still
   * removes the agent's files rather than fail half done; false then means none was known in memory.
   */
  forget(agentId: string): boolean {
    let had = this.#times.delete(agentId);
    this.#firedAt.delete(agentId);
    if (this.#pending.delete(agentId)) had = true;
    this.#backoff.delete(agentId);
    // Its timer is not left armed for it.
    this.#arm();
    if (this.#rows.deleteAgent(agentId)) had = true;
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
      // In the timer: a refused write must not throw out of it (it is tried again later, alarm-rows.ts).
      this.#rows.write(agentId, now);
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
