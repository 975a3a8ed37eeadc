/** Everything the simulator's handlers share: options, live faults, the scheduler, the cache, metrics, records. */
import { type EngineSimFaults, type EngineSimOptions, ownFaults } from "./options.ts";
import { PrefixCache } from "./prefix-cache.ts";
import { BatchScheduler } from "./scheduler.ts";
import { SimMetrics } from "./metrics.ts";

/** What the simulator remembers about one chat request (tests read these to see aborts and payloads). */
export interface SimRequestRecord {
  /** The simulator's id (`chatcmpl-…`). */
  id: string;
  /** The client's `X-Request-Id`, when sent. */
  requestId?: string;
  receivedAt: number;
  stream: boolean;
  /** HTTP status answered (200 even when the stream later failed; 0 while the `stall` fault holds it unanswered). */
  status: number;
  outcome: "running" | "completed" | "aborted" | "rejected" | "failed";
  promptTokens: number;
  cachedTokens: number;
  /** Generated so far, over all `n` choices. */
  completionTokens: number;
  /** The answer's `finish_reason` (the first choice's when `n` > 1), or why it ended early ("abort", "error"). */
  finishReason?: string;
  /** The parsed request body, as received. */
  body: unknown;
}

export class SimContext {
  faults: EngineSimFaults;
  readonly cache: PrefixCache;
  readonly scheduler: BatchScheduler;
  readonly metrics = new SimMetrics();
  readonly records: SimRequestRecord[] = [];
  /** `GET /health` requests received, answered or not (tests count a client's health checks with it). */
  healthChecks = 0;
  #sequence = 0;

  constructor(readonly options: EngineSimOptions) {
    this.faults = ownFaults(options.faults);
    this.cache = new PrefixCache(options.prefixCacheBlocks);
    this.scheduler = new BatchScheduler(options, this.cache);
  }

  nextId(): string {
    this.#sequence++;
    return `chatcmpl-sim${this.#sequence.toString(16).padStart(8, "0")}`;
  }

  record(record: SimRequestRecord): SimRequestRecord {
    this.records.push(record);
    if (this.records.length > this.options.maxRecords)
      this.records.splice(0, this.records.length - this.options.maxRecords);
    return record;
  }

  /**
   * Takes one use of a counted fault: true when it applies to this request. A fault without `count` applies
   * to every request; one whose count reached 0 is switched off.
   */
  takeFault(key: "failRequests" | "errorAfterTokens" | "dropAfterTokens"): boolean {
    const fault = this.faults[key];
    if (fault === null) return false;
    if (fault.count === undefined) return true;
    if (fault.count <= 0) {
      this.faults = { ...this.faults, [key]: null };
      return false;
    }
    fault.count--;
    return true;
  }
}
