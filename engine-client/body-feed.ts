/**
 * A response body's reads, handed to one consumer in batches. The source (the stream's dispatch handler,
 * stream-dispatch.ts) pushes each socket read in the same synchronous call undici makes, with no stream in between: a
 * node:stream Readable paid push, addChunk, emitReadable, a nextTick and a `data` emit per read, a fifth of the
 * bridge's busy time at one device (issue #5). The consumer awaits `take()`, which returns every chunk read since its
 * last call (one await per batch of reads, not per chunk), so a consumer that falls behind gets the backlog in one go.
 */
import type { ConsumerWatchdog } from "./consumer-watchdog.ts";

/** How the feed slows its source while the consumer is behind: undici's dispatch controller has these two. */
export interface FlowControl {
  pause(): void;
  resume(): void;
}

/** How a body stopped: it ended, or it failed (a dropped connection, an abort, undici's body timeout). */
type Stopped = { ended: true } | { ended: false; error: unknown };

const ENDED: Stopped = { ended: true };

/** The one waiter of `take()`. */
interface Waiter {
  resolve: (chunks: Buffer[] | null) => void;
  reject: (err: unknown) => void;
}

/** Buffered bytes above which the source is paused until the consumer takes them (back-pressure on the socket). */
export const PAUSE_ABOVE_BYTES = 1 << 20;

export class BodyFeed {
  #chunks: Buffer[] = [];
  #bytes = 0;
  #stopped: Stopped | undefined;
  #waiter: Waiter | undefined;
  #paused = false;
  /** Told when reads wait unread and when the consumer takes them (see consumer-watchdog.ts). */
  #watchdog: ConsumerWatchdog | undefined;

  constructor(private readonly flow: FlowControl) {}

  /** One read of the body. Pauses the source once more than PAUSE_ABOVE_BYTES wait unread. */
  push(chunk: Buffer): void {
    if (this.#stopped !== undefined) return;
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    if (this.#bytes > PAUSE_ABOVE_BYTES && !this.#paused) {
      this.#paused = true;
      this.flow.pause();
    }
    if (this.#waiter !== undefined) this.#wake();
    else this.#watchdog?.waiting();
  }

  /** The body ended: `take()` gives `null` once the chunks before it were taken. */
  end(): void {
    this.#stop(ENDED);
  }

  /** The body failed: `take()` rejects with `error` once the chunks before it were taken. */
  fail(error: unknown): void {
    this.#stop({ ended: false, error });
  }

  /** Whether the body ended (reads before its end may still wait to be taken). */
  get ended(): boolean {
    return this.#stopped?.ended === true;
  }

  /**
   * The chunks read since the last call, waiting for at least one; `null` once the body ended and everything was
   * taken. Rejects with the body's error once the chunks read before it were taken.
   */
  take(): Promise<Buffer[] | null> {
    this.#watchdog?.taken();
    if (this.#waiter !== undefined) return Promise.reject(new Error("BodyFeed.take() is already waiting"));
    if (this.#chunks.length > 0) {
      const chunks = this.#drain();
      // The body's end (or error) came before this take and is not in these chunks: it still waits for the
      // consumer, and a consumer that walks away now (before the stream's `done`) must still be noticed.
      if (this.#stopped !== undefined) this.#watchdog?.waiting();
      return Promise.resolve(chunks);
    }
    if (this.#stopped !== undefined) {
      return this.#stopped.ended ? Promise.resolve(null) : Promise.reject(this.#stopped.error);
    }
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  /**
   * Has `watchdog` told when reads (or the body's end or error) wait for the consumer and when it takes them, so a
   * consumer that stopped reading is noticed. What already waits counts from now.
   */
  watchConsumer(watchdog: ConsumerWatchdog): void {
    this.#watchdog = watchdog;
    if (this.#waiter === undefined && (this.#chunks.length > 0 || this.#stopped !== undefined)) watchdog.waiting();
  }

  #drain(): Buffer[] {
    const chunks = this.#chunks;
    this.#chunks = [];
    this.#bytes = 0;
    if (this.#paused) {
      this.#paused = false;
      // May push more reads at once (undici's parser flushes what the socket holds): they land in the new batch.
      if (this.#stopped === undefined) this.flow.resume();
    }
    return chunks;
  }

  #stop(how: Stopped): void {
    if (this.#stopped !== undefined) return;
    this.#stopped = how;
    if (this.#waiter !== undefined) this.#wake();
    else this.#watchdog?.waiting();
  }

  #wake(): void {
    const waiter = this.#waiter;
    const stopped = this.#stopped;
    if (waiter === undefined) return;
    if (this.#chunks.length > 0) {
      this.#waiter = undefined;
      waiter.resolve(this.#drain());
    } else if (stopped !== undefined) {
      this.#waiter = undefined;
      if (stopped.ended) waiter.resolve(null);
      else waiter.reject(stopped.error);
    }
  }
}
