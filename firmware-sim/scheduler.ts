/**
 * One timer for the whole fleet. Ten thousand devices with a `setInterval` each would mean ten thousand timers in
 * libuv and a wake-up per device; instead every device puts its next action (publish, ping, reconnect) into one
 * min-heap ordered by due time, and a single clock timer is armed for the earliest entry.
 */
import type { CancelTimer, Clock } from "./clock.ts";

/** A scheduled task; pass it to {@link TickScheduler.cancel}. */
export interface ScheduledTask {
  readonly dueMs: number;
  /** Insertion order: tasks due at the same time run first-in first-out. */
  readonly order: number;
  cancelled: boolean;
  readonly run: () => void;
  /** Whose task it is (a device id), so a task that throws can be traced to its device. */
  readonly owner?: string;
}

/** Scheduling as a device (or another owner) sees it: its own tasks, nothing fleet-wide. */
export interface TaskScheduler {
  /** Runs `run` after `delayMs` milliseconds. */
  after(delayMs: number, run: () => void): ScheduledTask;
  /** Cancels a task of this owner. */
  cancel(task: ScheduledTask | undefined): void;
}

/** Options of {@link TickScheduler}. */
export interface TickSchedulerOptions {
  /** Most tasks run in one turn before yielding to I/O, so a burst of due work cannot starve sockets. Default 2000. */
  maxTasksPerTurn?: number;
  /** Called when a task throws (with the task, so its owner is known); the scheduler keeps going. Default: ignore. */
  onTaskError?: (err: unknown, task: ScheduledTask) => void;
}

/** Shared scheduler: one armed timer whatever the number of pending tasks. */
export class TickScheduler {
  readonly #clock: Clock;
  readonly #heap: ScheduledTask[] = [];
  readonly #maxTasksPerTurn: number;
  readonly #onTaskError: (err: unknown, task: ScheduledTask) => void;
  #order = 0;
  #armedDueMs = Number.POSITIVE_INFINITY;
  #cancelArmed: CancelTimer | undefined;
  #closed = false;

  constructor(clock: Clock, options: TickSchedulerOptions = {}) {
    this.#clock = clock;
    this.#maxTasksPerTurn = options.maxTasksPerTurn ?? 2000;
    this.#onTaskError = options.onTaskError ?? (() => {});
  }

  /** Pending tasks, cancelled ones included until they reach the top of the heap. */
  get size(): number {
    return this.#heap.length;
  }

  /** Runs `run` after `delayMs` milliseconds; `owner` names whose task it is. */
  after(delayMs: number, run: () => void, owner?: string): ScheduledTask {
    return this.at(this.#clock.now() + Math.max(0, delayMs), run, owner);
  }

  /** Runs `run` at clock time `dueMs`; `owner` names whose task it is. */
  at(dueMs: number, run: () => void, owner?: string): ScheduledTask {
    const task: ScheduledTask = { dueMs, order: this.#order++, cancelled: false, run, owner };
    if (this.#closed) {
      task.cancelled = true;
      return task;
    }
    this.#push(task);
    if (dueMs < this.#armedDueMs) this.#arm();
    return task;
  }

  /** Cancels a task; it is dropped lazily when it reaches the top of the heap. */
  cancel(task: ScheduledTask | undefined): void {
    if (task) task.cancelled = true;
  }

  /** The view of one owner: every task it schedules is tagged with `owner`. */
  forOwner(owner: string): TaskScheduler {
    return {
      after: (delayMs, run) => this.after(delayMs, run, owner),
      cancel: (task) => this.cancel(task),
    };
  }

  /** Cancels everything and disarms the timer. */
  close(): void {
    this.#closed = true;
    this.#cancelArmed?.();
    this.#cancelArmed = undefined;
    for (const task of this.#heap) task.cancelled = true;
    this.#heap.length = 0;
  }

  #arm(): void {
    this.#cancelArmed?.();
    this.#cancelArmed = undefined;
    this.#armedDueMs = Number.POSITIVE_INFINITY;
    while (this.#heap.length > 0 && this.#heap[0].cancelled) this.#pop();
    if (this.#heap.length === 0 || this.#closed) return;
    const dueMs = this.#heap[0].dueMs;
    this.#armedDueMs = dueMs;
    this.#cancelArmed = this.#clock.setTimer(() => this.#fire(), dueMs - this.#clock.now());
  }

  #fire(): void {
    this.#cancelArmed = undefined;
    this.#armedDueMs = Number.POSITIVE_INFINITY;
    const nowMs = this.#clock.now();
    let ran = 0;
    while (this.#heap.length > 0 && ran < this.#maxTasksPerTurn) {
      const top = this.#heap[0];
      if (top.cancelled) {
        this.#pop();
        continue;
      }
      if (top.dueMs > nowMs) break;
      this.#pop();
      ran++;
      try {
        top.run();
      } catch (err) {
        this.#reportTaskError(err, top);
      }
    }
    if (!this.#closed) this.#arm();
  }

  #reportTaskError(err: unknown, task: ScheduledTask): void {
    try {
      this.#onTaskError(err, task);
    } catch {
      // A failing error hook must not stop the other tasks of this turn, nor leave the timer unarmed.
    }
  }

  #push(task: ScheduledTask): void {
    const heap = this.#heap;
    heap.push(task);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i], heap[parent])) break;
      [heap[i], heap[parent]] = [heap[parent], heap[i]];
      i = parent;
    }
  }

  #pop(): ScheduledTask | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (left < heap.length && before(heap[left], heap[smallest])) smallest = left;
        if (right < heap.length && before(heap[right], heap[smallest])) smallest = right;
        if (smallest === i) break;
        [heap[i], heap[smallest]] = [heap[smallest], heap[i]];
        i = smallest;
      }
    }
    return top;
  }
}

function before(a: ScheduledTask, b: ScheduledTask): boolean {
  return a.dueMs < b.dueMs || (a.dueMs === b.dueMs && a.order < b.order);
}
