/**
 * Coalescing of streamed text on the task side, before it becomes mailbox events. Every `task.progress` call is one
 * event through the agent's mailbox (a transaction) and one `down/reason` packet, so per-token progress made the
 * bridge's CPU per streamed token the limit of the reasoning path. Text that arrives within one flush window is
 * sent as one progress update instead: the round's very first text leaves at once (time to the first chunk is what a
 * user waits for), the first text of a later window leaves on the next turn of the event loop (with whatever else
 * that turn parsed), later text waits at most the window, and the round's end flushes whatever is pending before
 * the round's result is reported, so ordering holds and the final frame stays last.
 *
 * The coalescing follows the load:
 * - the window is `flushIntervalMs` (50 ms, about 20 chunks a second, smooth to read), and `busyFlushIntervalMs`
 *   (100 ms) while the process's event loop was busy at least `busyUtilization` of the last 100 ms (then every
 *   packet saved is CPU handed back to the streams);
 * - text flushed while the previous update still waits in the agent's mailbox is merged into that update (one
 *   mailbox event, one chunk), see `TaskContext.progress`.
 */
import type { Value } from "../../../codecs/frames.ts";
import { BridgeError } from "../../../errors/bridge-error.ts";
import type { TaskContext } from "../../types.ts";
import { isValueMap } from "../values.ts";
import { type LoadGauge, processLoadGauge } from "./load-gauge.ts";

/** The timers the batcher uses; real ones by default, a fake in tests. */
export interface BatchTimers {
  /** Milliseconds on any monotonic-enough scale. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** Runs `fn` after the current turn of the event loop (I/O already read in this turn is coalesced). */
  setImmediate(fn: () => void): unknown;
  clearImmediate(handle: unknown): void;
}

export interface ChunkBatchOptions {
  /**
   * Least time between two flushes, ms. Text arriving sooner waits and goes out together. 0 flushes on every
   * event-loop turn (only same-tick text is coalesced). Default 50 (DeviceAgent option `reasonChunkIntervalMs`).
   */
  flushIntervalMs: number;
  /** Pending text reaching this many UTF-8 bytes is flushed at once, window or not. Default 1024. */
  flushBytes: number;
  /**
   * The window while the process is busy (see `busyUtilization`), ms; at least `flushIntervalMs` is used. Default
   * 100 (DeviceAgent option `reasonBusyChunkIntervalMs`). At 256 streaming devices a token reaches each device
   * about every 30 ms: 20 and 50 ms windows sent 1.4-1.5 tokens per packet there, 50 and 100 ms about 2.5, for
   * 8-12% less bridge CPU per token (docs/benchmarks.md, "Engine through the bridge").
   */
  busyFlushIntervalMs: number;
  /**
   * Event-loop utilization (0-1, over the last 100 ms) from which the busy window applies. Default 0.8. 1 never
   * applies it (above 1 is refused).
   */
  busyUtilization: number;
}

export const CHUNK_BATCH_DEFAULTS: Readonly<ChunkBatchOptions> = Object.freeze({
  flushIntervalMs: 50,
  flushBytes: 1024,
  busyFlushIntervalMs: 100,
  busyUtilization: 0.8,
});

export const realBatchTimers: BatchTimers = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  setImmediate: (fn) => setImmediate(fn),
  clearImmediate: (handle) => clearImmediate(handle as ReturnType<typeof setImmediate>),
};

/** A flush window must be a finite number of ms >= 0. */
function requireWindowMs(options: ChunkBatchOptions, field: "flushIntervalMs" | "busyFlushIntervalMs"): void {
  const value = options[field];
  if (!Number.isFinite(value) || value < 0)
    throw new BridgeError("BRIDGE_ERR_CONFIG", `${field} must be a finite number >= 0`, { field });
}

/** Validates options, naming the field at fault; missing fields take the defaults. */
export function chunkBatchOptions(given: Partial<ChunkBatchOptions> = {}): ChunkBatchOptions {
  const options = { ...CHUNK_BATCH_DEFAULTS, ...given };
  requireWindowMs(options, "flushIntervalMs");
  if (!(options.flushBytes >= 1))
    throw new BridgeError("BRIDGE_ERR_CONFIG", "flushBytes must be a number >= 1", { field: "flushBytes" });
  requireWindowMs(options, "busyFlushIntervalMs");
  if (!(options.busyUtilization >= 0 && options.busyUtilization <= 1))
    throw new BridgeError("BRIDGE_ERR_CONFIG", "busyUtilization must be a number from 0 to 1", {
      field: "busyUtilization",
    });
  return options;
}

/** Only `{ text }` updates are text deltas; anything else passes through unchanged, after the pending text. */
function deltaText(update: Value): string | undefined {
  if (!isValueMap(update) || typeof update.text !== "string") return undefined;
  return Object.keys(update).length === 1 ? update.text : undefined;
}

/** Two text deltas waiting in the mailbox become one (see `TaskContext.progress`); anything else stays apart. */
export function mergeTextDeltas(previous: Value, update: Value): Value | undefined {
  const before = deltaText(previous);
  const after = before === undefined ? undefined : deltaText(update);
  return after === undefined ? undefined : { text: before + after };
}

/** Collects text deltas and hands them to `emit` as fewer, larger `{ text }` updates, in order. */
export class ChunkBatcher {
  #pending: string[] = [];
  #pendingBytes = 0;
  #lastFlushAt = Number.NEGATIVE_INFINITY;
  #timer: unknown = undefined;
  #immediate: unknown = undefined;
  #closed = false;

  constructor(
    private readonly emit: (update: Value) => void,
    private readonly options: ChunkBatchOptions = CHUNK_BATCH_DEFAULTS,
    private readonly timers: BatchTimers = realBatchTimers,
    private readonly load: LoadGauge = processLoadGauge,
  ) {}

  /** Takes one progress update: text is coalesced, anything else flushes the pending text and goes straight on. */
  push(update: Value): void {
    if (this.#closed) return;
    const text = deltaText(update);
    if (text === undefined) {
      this.flush();
      this.emit(update);
      return;
    }
    if (text === "") return;
    this.#pending.push(text);
    this.#pendingBytes += Buffer.byteLength(text, "utf8");
    if (this.#pendingBytes >= this.options.flushBytes || this.#lastFlushAt === Number.NEGATIVE_INFINITY) {
      this.flush();
      return;
    }
    if (this.#timer !== undefined || this.#immediate !== undefined) return;
    const wait = this.#lastFlushAt + this.#windowMs() - this.timers.now();
    if (wait > 0) this.#timer = this.timers.setTimeout(() => this.#fire(), wait);
    else this.#immediate = this.timers.setImmediate(() => this.#fire());
  }

  /** Emits the pending text now, as one update. */
  flush(): void {
    this.#cancelTimers();
    if (this.#pending.length === 0) return;
    const text = this.#pending.length === 1 ? this.#pending[0] : this.#pending.join("");
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#lastFlushAt = this.timers.now();
    this.emit({ text });
  }

  /** Flushes and stops: later pushes are ignored and no timer stays armed. */
  close(): void {
    this.flush();
    this.#closed = true;
  }

  /** The current window: the busy one while the process is loaded (asked once per window, not per delta). */
  #windowMs(): number {
    const { flushIntervalMs, busyFlushIntervalMs, busyUtilization } = this.options;
    if (busyFlushIntervalMs <= flushIntervalMs || busyUtilization >= 1) return flushIntervalMs;
    return this.load.utilization() >= busyUtilization ? busyFlushIntervalMs : flushIntervalMs;
  }

  #fire(): void {
    this.#timer = undefined;
    this.#immediate = undefined;
    this.flush();
  }

  #cancelTimers(): void {
    if (this.#timer !== undefined) this.timers.clearTimeout(this.#timer);
    if (this.#immediate !== undefined) this.timers.clearImmediate(this.#immediate);
    this.#timer = undefined;
    this.#immediate = undefined;
  }
}

/**
 * Wraps a task body so its text progress is coalesced by a ChunkBatcher. Whatever is pending when the body settles
 * is flushed before the outcome goes back (progress events always precede the task's done or failed event). Text
 * that finds the previous update still in the mailbox joins it (`mergeTextDeltas`).
 */
export function coalesceProgress(
  body: (task: TaskContext) => Promise<Value>,
  options: ChunkBatchOptions = CHUNK_BATCH_DEFAULTS,
  timers: BatchTimers = realBatchTimers,
  load: LoadGauge = processLoadGauge,
): (task: TaskContext) => Promise<Value> {
  return async (task) => {
    const batcher = new ChunkBatcher((update) => task.progress(update, mergeTextDeltas), options, timers, load);
    try {
      return await body({ id: task.id, signal: task.signal, progress: (update) => batcher.push(update) });
    } finally {
      batcher.close();
    }
  };
}
