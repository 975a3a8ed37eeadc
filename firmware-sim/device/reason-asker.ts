/**
 * When a reasoning device asks its next question: one open question at a time, the next one `reasonIntervalMs`
 * after an answer (or an error), and a question with no final frame after `reasonTimeoutMs` is given up so one lost
 * answer does not silence the device for the rest of the run.
 */
import type { ReasonRequestFrame } from "../../codecs/frames.ts";
import { REASONING_QUESTIONS } from "../profiles/index.ts";
import type { ScheduledTask, TaskScheduler } from "../scheduler.ts";
import type { FleetMetrics } from "../stats.ts";
import type { DeviceBehaviour } from "./device-env.ts";
import type { ReasonTracker } from "./reason-tracker.ts";

export class ReasonAsker {
  #task: ScheduledTask | undefined;
  #count = 0;
  #active = false;

  constructor(
    private readonly scheduler: TaskScheduler,
    private readonly behaviour: DeviceBehaviour,
    private readonly tracker: ReasonTracker,
    private readonly metrics: FleetMetrics,
    /** Unique per run and device instance, so request ids never collide with an earlier run's. */
    private readonly idPrefix: string,
    private readonly streams: boolean,
    private readonly nowMs: () => number,
    private readonly ask: (frame: ReasonRequestFrame) => void,
  ) {}

  /** Allows questions and schedules the next one in `delayMs` unless one is open. */
  resume(delayMs: number): void {
    this.#active = true;
    if (this.tracker.openId === undefined) this.#schedule(delayMs);
  }

  /** The open question ended: the next one after the interval. */
  answered(): void {
    if (this.#active) this.#schedule(this.behaviour.reasonIntervalMs);
  }

  stop(): void {
    this.#active = false;
    this.scheduler.cancel(this.#task);
  }

  #schedule(delayMs: number): void {
    this.scheduler.cancel(this.#task);
    this.#task = this.scheduler.after(delayMs, () => this.#askNext());
  }

  #askNext(): void {
    if (!this.#active) return;
    const now = this.nowMs();
    const openSince = this.tracker.openSinceMs;
    if (openSince !== undefined) {
      if (now - openSince < this.behaviour.reasonTimeoutMs) return;
      this.metrics.counters.reasonTimedOut++;
      this.tracker.abandon();
    }
    const n = this.#count++;
    const id = `${this.idPrefix}.${n}`;
    this.tracker.start(id, this.streams, now);
    this.metrics.counters.reasonAsked++;
    this.ask({
      id,
      q: REASONING_QUESTIONS[n % REASONING_QUESTIONS.length],
      max: this.behaviour.reasonMaxTokens,
      stream: this.streams,
    });
    this.#schedule(this.behaviour.reasonTimeoutMs);
  }
}
