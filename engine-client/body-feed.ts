/**
 * Reads a response body by its `data` events instead of its async iterator. undici hands each socket read to the
 * body synchronously; a `data` listener takes it in that same call, where the async iterator pays a `readable`
 * event, a `nextTick` and a promise per read before any parsing starts. The consumer awaits `take()`, which
 * returns every chunk read since its last call (one await per batch of reads, not per chunk), so a consumer that
 * falls behind gets the backlog in one go.
 */
import type { Readable } from "node:stream";

/** How a body stopped: it ended, or it failed (a dropped connection, an abort, undici's body timeout). */
type Stopped = { ended: true } | { ended: false; error: unknown };

/** The one waiter of `take()`. */
interface Waiter {
  resolve: (chunks: Buffer[] | null) => void;
  reject: (err: unknown) => void;
}

/** Buffered bytes above which the body is paused until the consumer takes them (back-pressure on the socket). */
const PAUSE_ABOVE_BYTES = 1 << 20;

export class BodyFeed {
  #chunks: Buffer[] = [];
  #bytes = 0;
  #stopped: Stopped | undefined;
  #waiter: Waiter | undefined;
  #paused = false;

  constructor(private readonly body: Readable) {
    body.on("data", (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#bytes += chunk.length;
      if (this.#bytes > PAUSE_ABOVE_BYTES && !this.#paused) {
        this.#paused = true;
        body.pause();
      }
      this.#wake();
    });
    body.once("end", () => this.#stop({ ended: true }));
    body.once("error", (error: unknown) => this.#stop({ ended: false, error }));
    // A body destroyed without an error closes without `end`: for the reader that is a dropped stream. (After `end`
    // or `error`, the usual case, nothing is built: an Error captures a stack.)
    body.once("close", () => {
      if (this.#stopped === undefined) this.#stop({ ended: false, error: new Error("the response body closed early") });
    });
  }

  /**
   * The chunks read since the last call, waiting for at least one; `null` once the body ended and everything was
   * taken. Rejects with the body's error once the chunks read before it were taken.
   */
  take(): Promise<Buffer[] | null> {
    if (this.#waiter !== undefined) return Promise.reject(new Error("BodyFeed.take() is already waiting"));
    if (this.#chunks.length > 0) return Promise.resolve(this.#drain());
    if (this.#stopped !== undefined) {
      return this.#stopped.ended ? Promise.resolve(null) : Promise.reject(this.#stopped.error);
    }
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  #drain(): Buffer[] {
    const chunks = this.#chunks;
    this.#chunks = [];
    this.#bytes = 0;
    if (this.#paused) {
      this.#paused = false;
      this.body.resume();
    }
    return chunks;
  }

  #stop(how: Stopped): void {
    this.#stopped ??= how;
    this.#wake();
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
