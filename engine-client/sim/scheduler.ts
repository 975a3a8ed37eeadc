/**
 * Continuous batching: every step admits waiting sequences (their prefill) and advances every running
 * sequence by one token (decode), and a step lasts what the step model says, scaled by `timeScale`.
 * A finished or aborted sequence leaves the batch at once, and the next waiting one takes its place on the
 * next step, as in vLLM's scheduler. A waiting sequence also needs room in the KV cache (kv-cache.ts). Output depends
 * only on the prompt, never on the batch around it.
 */
import { type KvHold, KvCache } from "./kv-cache.ts";
import type { EngineSimOptions } from "./options.ts";
import type { PrefixCache } from "./prefix-cache.ts";
import { decodeStepMs, prefillMs } from "./step-model.ts";

/** One request inside the engine. */
export interface Sequence {
  promptTokens: readonly number[];
  /** Tokens to generate. */
  outputTokens: number;
  /** Called once per generated token, index from 0; `cachedTokens` is known from the first one. */
  onToken(index: number, cachedTokens: number): void;
  /** Set by the scheduler. */
  cachedTokens?: number;
  generated?: number;
  cancelled?: boolean;
  kv?: KvHold;
}

export class BatchScheduler {
  readonly #waiting: Sequence[] = [];
  readonly #running: Sequence[] = [];
  /** Blocks the admitted and running sequences hold. */
  readonly #kv: KvCache;
  /** Admitted by the step in flight: they hold batch slots while prefilled, before they join `#running`. */
  #admitted: Sequence[] = [];
  #stepping = false;
  #closed = false;
  /** When the previous step ended, in wall ms, so timer lateness does not accumulate over steps. */
  #lastStepEnd = 0;
  /** Modelled milliseconds of engine time spent stepping. */
  modelledMs = 0;
  steps = 0;
  /** Steps that admitted at least one sequence (each paid a prefill), and the sequences they admitted. */
  prefillSteps = 0;
  admittedSequences = 0;

  constructor(
    private readonly options: EngineSimOptions,
    private readonly cache: PrefixCache,
  ) {
    this.#kv = new KvCache(options.kvCacheBlocks);
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  get running(): number {
    return this.#running.length + this.#admitted.length;
  }

  /** KV-cache blocks in use now (prompt blocks shared by a common prefix counted once). */
  get kvCacheBlocks(): number {
    return this.#kv.used;
  }

  /** `vllm:kv_cache_usage_perc`: blocks in use over the capacity, 1 meaning full. */
  get kvCacheUsage(): number {
    return this.#kv.usage;
  }

  /**
   * Whether `count` more sequences may queue: at most `maxWaiting` would then wait beyond the batch slots free now.
   * Sequences the next step will admit into free slots do not count: vLLM schedules a burst that fits its batch at
   * once, so a burst arriving at an idle engine must not be refused for the moment it spends before the step.
   */
  hasRoom(count = 1): boolean {
    if (this.#closed) return false;
    let busy = 0;
    for (const s of this.#running) if (!s.cancelled && (s.generated ?? 0) < s.outputTokens) busy++;
    for (const s of this.#admitted) if (!s.cancelled) busy++;
    const free = Math.max(0, this.options.maxNumSeqs - busy);
    return this.#waiting.length + count - free <= this.options.maxWaiting;
  }

  /**
   * Queues the sequences of one request (its `n` choices) all or none; false when the waiting queue has no room for
   * them all (the server answers 503), see `hasRoom`.
   */
  submit(...sequences: Sequence[]): boolean {
    if (!this.hasRoom(sequences.length)) return false;
    for (const sequence of sequences) this.#waiting.push(sequence);
    this.#kick();
    return true;
  }

  /** Frees a sequence's slot (client went away). */
  cancel(sequence: Sequence): void {
    sequence.cancelled = true;
    const index = this.#waiting.indexOf(sequence);
    if (index !== -1) this.#waiting.splice(index, 1);
  }

  close(): void {
    this.#closed = true;
    for (const sequence of [...this.#waiting, ...this.#admitted, ...this.#running]) sequence.cancelled = true;
    this.#waiting.length = 0;
    this.#admitted = [];
    this.#running.length = 0;
    this.#kv.clear();
  }

  #kick(): void {
    if (this.#stepping || this.#closed || (this.#waiting.length === 0 && this.#running.length === 0)) return;
    this.#stepping = true;
    // Admission happens at the start of the step, so requests arriving together are prefilled together.
    setImmediate(() => this.#step());
  }

  #step(): void {
    if (this.#closed) return;
    const { stepModel, maxNumSeqs, maxNumBatchedTokens, timeScale } = this.options;
    this.#prune();
    const admitted: Sequence[] = [];
    let prefillTokens = 0;
    while (this.#waiting.length > 0 && this.#running.length + admitted.length < maxNumSeqs) {
      const next = this.#waiting[0];
      const uncached = next.promptTokens.length - this.cache.peek(next.promptTokens);
      // A long prompt alone may exceed the budget; it still runs (vLLM would chunk it over several steps).
      if (admitted.length > 0 && prefillTokens + uncached > maxNumBatchedTokens) break;
      // First come, first served: a sequence whose blocks do not fit holds back those behind it, as in vLLM.
      const engineEmpty = admitted.length === 0 && this.#running.length === 0;
      const filled = () => next.promptTokens.length + (next.generated ?? 0);
      const kv = this.#kv.hold(next.promptTokens, next.promptTokens.length + next.outputTokens, filled, engineEmpty);
      if (kv === undefined) break;
      next.kv = kv;
      // Counted only now, so a request that waits for the next step is not counted twice.
      const cached = this.cache.lookup(next.promptTokens);
      this.#waiting.shift();
      next.cachedTokens = cached;
      next.generated = 0;
      prefillTokens += uncached;
      admitted.push(next);
    }
    let ms = admitted.length > 0 ? prefillMs(stepModel, prefillTokens) : 0;
    if (this.#running.length > 0) {
      ms += decodeStepMs(
        stepModel,
        this.#running.map((s) => s.promptTokens.length + (s.generated ?? 0)),
      );
    }
    this.modelledMs += ms;
    this.steps++;
    if (admitted.length > 0) {
      this.prefillSteps++;
      this.admittedSequences += admitted.length;
    }
    const now = performance.now();
    const start = Math.max(now, this.#lastStepEnd);
    const end = start + ms * timeScale;
    this.#lastStepEnd = end;
    this.#admitted = admitted;
    const finish = () => this.#finishStep(admitted);
    if (end - now < 1) setImmediate(finish);
    else setTimeout(finish, end - now);
  }

  #finishStep(admitted: Sequence[]): void {
    if (this.#closed) return;
    this.#admitted = [];
    for (const sequence of this.#running) this.#emit(sequence);
    for (const sequence of admitted) {
      if (sequence.cancelled) {
        this.#kv.release(sequence.kv);
        continue;
      }
      this.cache.insert(sequence.promptTokens);
      this.#running.push(sequence);
      this.#emit(sequence);
    }
    this.#prune();
    this.#stepping = false;
    this.#kick();
  }

  #emit(sequence: Sequence): void {
    if (sequence.cancelled) return;
    const index = sequence.generated ?? 0;
    if (index >= sequence.outputTokens) return;
    sequence.generated = index + 1;
    sequence.onToken(index, sequence.cachedTokens ?? 0);
  }

  #prune(): void {
    for (let i = this.#running.length - 1; i >= 0; i--) {
      const s = this.#running[i];
      if (s.cancelled || (s.generated ?? 0) >= s.outputTokens) {
        this.#running.splice(i, 1);
        this.#kv.release(s.kv);
      }
    }
  }
}
