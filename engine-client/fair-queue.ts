/**
 * A fair waiting queue: priority between levels, round-robin between agents inside a level, FIFO within one
 * agent. An agent with 100 waiting requests gets one turn per round like an agent with one, so a chatty device
 * cannot push a quiet device's request behind all of its own.
 *
 * Priority ages: a waiting item rises one level per `priorityAgingMs` it has waited, so a steady stream of
 * high-priority requests cannot starve a low-priority one forever. `shift` ranks levels, not items: a level ranks
 * as high as its oldest waiting item has risen (`priority + floor(waitedMs / priorityAgingMs)`), ties going to the
 * higher base priority. Items of one level arrive in time order, so its oldest is the first of its arrival list
 * still waiting, and a shift costs O(levels), not O(waiting items). An aged level keeps winning until its oldest
 * item is served: round-robin reaches that item's agent within one round, and an agent's FIFO head is its oldest.
 * An item pushed `(its priority - the oldest's priority + 1) x priorityAgingMs` or more after the oldest ranks
 * below it for good, so only a bounded set of items can go first and no wait is unbounded.
 */
import { type Clock, systemClock } from "./clock.ts";

export interface FairQueueOptions {
  /** A waiting item rises one priority level per this many ms waited; 0 keeps strict priority. Default 0. */
  priorityAgingMs?: number;
  /** Where enqueue and wait times come from. Default: the system clock. */
  clock?: Pick<Clock, "monotonicNow">;
}

interface Entry<T> {
  item: T;
  /** When it was pushed, by the queue's clock (monotonicNow). */
  enqueuedAt: number;
  /** False once shifted or removed; the level's arrival list drops such entries lazily. */
  waiting: boolean;
}

/** Entries in arrival order with lazy deletion: the first waiting one is the level's oldest. */
class ArrivalOrder<T> {
  #entries: Entry<T>[] = [];
  #head = 0;
  /** Entries behind the head that are no longer waiting. */
  #gone = 0;

  append(entry: Entry<T>): void {
    this.#entries.push(entry);
  }

  /** The oldest waiting entry. Amortized O(1): every entry is stepped over once. */
  oldest(): Entry<T> | undefined {
    while (this.#head < this.#entries.length && !this.#entries[this.#head].waiting) {
      this.#head++;
      this.#gone--;
    }
    return this.#entries[this.#head];
  }

  /**
   * Notes that an entry left the queue. Entries removed behind a long-waiting head would pile up; once they
   * outnumber the rest the list is compacted, which keeps it linear in waiting items at O(1) amortized cost.
   */
  left(): void {
    this.#gone++;
    if (this.#gone > 32 && this.#gone > this.#entries.length - this.#head - this.#gone) this.#compact();
    else if (this.#head > 1024 && this.#head * 2 > this.#entries.length) this.#compact();
  }

  #compact(): void {
    this.#entries = this.#entries.filter((entry, i) => i >= this.#head && entry.waiting);
    this.#head = 0;
    this.#gone = 0;
  }
}

interface Level<T> {
  /** Waiting entries per agent. Map iteration order is the round-robin ring: the next agent to serve is first. */
  agents: Map<string, Entry<T>[]>;
  arrivals: ArrivalOrder<T>;
}

/** A priority-aware, per-agent round-robin queue whose priorities age while items wait. */
export class FairQueue<T> {
  readonly #agingMs: number;
  readonly #clock: Pick<Clock, "monotonicNow">;
  #levels = new Map<number, Level<T>>();
  /** Priorities in descending order, so ties between equally aged levels go to the higher base priority. */
  #priorities: number[] = [];
  #size = 0;

  constructor(options: FairQueueOptions = {}) {
    const agingMs = options.priorityAgingMs ?? 0;
    if (!Number.isFinite(agingMs) || agingMs < 0) {
      throw new RangeError(`FairQueue priorityAgingMs must be a finite number >= 0, got ${agingMs}`);
    }
    this.#agingMs = agingMs;
    this.#clock = options.clock ?? systemClock;
  }

  get size(): number {
    return this.#size;
  }

  push(agentId: string, priority: number, item: T): void {
    const level = this.#levels.get(priority) ?? this.#addLevel(priority);
    const entry: Entry<T> = { item, enqueuedAt: this.#clock.monotonicNow(), waiting: true };
    const entries = level.agents.get(agentId);
    if (entries === undefined) level.agents.set(agentId, [entry]);
    else entries.push(entry);
    level.arrivals.append(entry);
    this.#size++;
  }

  /** Takes the next item: from the level whose oldest item ranks highest, then the agent whose turn it is. */
  shift(): T | undefined {
    const priority = this.#nextLevel();
    if (priority === undefined) return undefined;
    const level = this.#levels.get(priority)!;
    const [agentId, entries] = level.agents.entries().next().value!;
    const entry = entries.shift()!;
    // Moving the agent to the end of the Map is what makes the turn go round.
    level.agents.delete(agentId);
    if (entries.length > 0) level.agents.set(agentId, entries);
    this.#leave(priority, level, entry);
    return entry.item;
  }

  /** Removes one waiting item (cancelled or past its deadline). Returns false when it was not waiting. */
  remove(agentId: string, priority: number, item: T): boolean {
    const level = this.#levels.get(priority);
    const entries = level?.agents.get(agentId);
    if (level === undefined || entries === undefined) return false;
    const index = entries.findIndex((entry) => entry.item === item);
    if (index === -1) return false;
    const [entry] = entries.splice(index, 1);
    if (entries.length === 0) level.agents.delete(agentId);
    this.#leave(priority, level, entry);
    return true;
  }

  /** Removes and returns everything, in no particular order (used on close). */
  drain(): T[] {
    const all: T[] = [];
    for (const level of this.#levels.values()) {
      for (const entries of level.agents.values()) for (const entry of entries) all.push(entry.item);
    }
    this.#levels.clear();
    this.#priorities = [];
    this.#size = 0;
    return all;
  }

  /** The base priority of the level to serve next: highest aged rank of its oldest item, ties to the higher base. */
  #nextLevel(): number | undefined {
    if (this.#agingMs === 0) return this.#priorities[0];
    const now = this.#clock.monotonicNow();
    let best: number | undefined;
    let bestRank = Number.NEGATIVE_INFINITY;
    for (const priority of this.#priorities) {
      const oldest = this.#levels.get(priority)!.arrivals.oldest()!;
      const rank = priority + Math.floor(Math.max(0, now - oldest.enqueuedAt) / this.#agingMs);
      if (rank > bestRank) {
        best = priority;
        bestRank = rank;
      }
    }
    return best;
  }

  #addLevel(priority: number): Level<T> {
    const level: Level<T> = { agents: new Map(), arrivals: new ArrivalOrder() };
    this.#levels.set(priority, level);
    this.#priorities.push(priority);
    this.#priorities.sort((a, b) => b - a);
    return level;
  }

  /** Book-keeping for an entry that left by `shift` or `remove`; an emptied level goes. */
  #leave(priority: number, level: Level<T>, entry: Entry<T>): void {
    entry.waiting = false;
    this.#size--;
    if (level.agents.size === 0) {
      this.#levels.delete(priority);
      this.#priorities = this.#priorities.filter((p) => p !== priority);
    } else {
      level.arrivals.left();
    }
  }
}
