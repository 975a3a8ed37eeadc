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
 */
export class AlarmIndex {
  readonly #db: RuntimeDb;
  readonly #clock: Clock;
  readonly #fire: (agentIds: string[]) => void;
  readonly #times = new Map<string, number>();
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

  constructor(db: RuntimeDb, clock: Clock, fire: (agentIds: string[]) => void) {
    this.#db = db;
    this.#clock = clock;
    this.#fire = fire;
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
  }

  stop(): void {
    this.#running = false;
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerAt = Number.POSITIVE_INFINITY;
  }

  get(agentId: string): number | undefined {
    const t = this.#times.get(agentId);
    return t === FIRED ? undefined : t;
  }

  /**
   * Sets the agent's next alarm exactly (after its commit); null removes it. A time the agent's backoff holds (due by
   * its `heldThrough`) becomes the backoff's end (see backOff); a later one is set as it is.
   */
  set(agentId: string, at: number | null): void {
    if (this.#backoff.size > 0) {
      const backoff = this.#backoffInForce(agentId);
      // Nothing left due: the backoff has nothing to hold back, and a later failure starts a new run of them (kept,
      // its entry would never be cleared and a failure days later would wait the old run's next, longer step).
      if (at === null) this.#backoff.delete(agentId);
      else if (backoff !== undefined && at <= backoff.heldThrough) at = backoff.until;
    }
    const current = this.#times.get(agentId);
    if (at === null) {
      if (current === undefined) return;
      this.#times.delete(agentId);
      this.#db.setAlarm(agentId, null);
    } else {
      if (current === at) return;
      this.#db.setAlarm(agentId, at);
      this.#times.set(agentId, at);
      this.#push({ id: agentId, t: at });
    }
    this.#arm();
  }

  /** Write-ahead: moves the alarm earlier if `at` is earlier than what the index holds. */
  lowerTo(agentId: string, at: number): void {
    const current = this.get(agentId);
    if (current === undefined || at < current) this.set(agentId, at);
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
   */
  backOff(agentId: string, delayMs: (failures: number) => number): { failures: number; delayMs: number } {
    const previous = this.#backoffInForce(agentId);
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

  /** Drops the agent's alarm, pending mark and directory entries; true when it had any. */
  forget(agentId: string): boolean {
    this.#times.delete(agentId);
    this.#pending.delete(agentId);
    this.#backoff.delete(agentId);
    return this.#db.deleteAgent(agentId);
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
      this.#db.setAlarm(agentId, now);
      this.#times.set(agentId, now);
      this.#push({ id: agentId, t: now });
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
