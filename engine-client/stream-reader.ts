/**
 * Reads an opened SSE response into `ChatStreamEvent`s: bytes -> UTF-8 text (multi-byte characters may be
 * split across chunks) -> SSE events -> JSON chunks -> assembled events. Anything wrong after the first byte
 * is BRIDGE_ERR_ENGINE_STREAM_BROKEN: the caller may already have shown part of the answer, so it is never
 * silently retried.
 *
 * Every chunk the socket delivered since the last call is parsed in one synchronous pass and its events are
 * returned together: the caller pays one await per batch of reads, not one async-generator step per event (on a
 * loaded bridge that chain of promises was a tenth of the CPU per streamed token).
 */
import { StringDecoder } from "node:string_decoder";
import type { ChatStreamEvent } from "../agents/engine.ts";
import type { BridgeError } from "../errors/index.ts";
import type { Clock, TimerHandle } from "./clock.ts";
import { CONTEXT_LENGTH_REASON, isContextLengthRefusalText } from "./context-length.ts";
import { ENGINE_ERROR_CODES, engineError, engineText, redactSecret } from "./errors.ts";
import { describeNetworkError } from "./http.ts";
import { SseParser } from "./sse-parser.ts";
import type { AbortSource } from "./request-context.ts";
import type { OpenedStream } from "./stream-dispatch.ts";
import { StreamAssembler } from "./stream-assembler.ts";
import { parseEngineErrorObject, parseErrorEvent } from "./wire.ts";

/** An SSE line longer than this (no line break in 1 MiB) is a broken server, not a big token. */
const MAX_PENDING_CHARS = 1 << 20;

/**
 * After `[DONE]` the body should end at once; draining it keeps the keep-alive socket reusable. A server that
 * holds the response open instead gets this long before the body is destroyed (closing that socket).
 */
const DRAIN_AFTER_DONE_MS = 1000;

export interface ChatStreamContext {
  replica: string;
  apiKey: string | undefined;
  /** The request's abort: a read that fails after it throws its reason. */
  request: Pick<AbortSource, "aborted" | "reason">;
  /** The client's clock: the drain after `[DONE]` is timed on it. */
  clock: Clock;
}

/**
 * One opened stream's events, in order, a batch at a time. `next()` resolves with at least one event while the
 * stream lasts and with `[]` after the batch that held `done` (always the last event). It throws STREAM_BROKEN on
 * an error object, bad JSON, a dropped connection or an end without `[DONE]` (after returning the events parsed
 * before the fault), and rethrows the abort's reason when the request was aborted.
 */
export class ChatStreamReader {
  readonly #opened: OpenedStream;
  readonly #context: ChatStreamContext;
  /**
   * Node's StringDecoder rather than a TextDecoder: the same handling of a character split across reads, at a quarter
   * of the cost per read, and no ICU converter opened per stream. (The SSE parser strips a leading BOM itself.)
   */
  readonly #decoder = new StringDecoder("utf8");
  readonly #parser = new SseParser();
  readonly #assembler = new StreamAssembler();
  /** Set at `[DONE]`: the closing events, handed out once the body has ended (or the drain gave up). */
  #finalEvents: ChatStreamEvent[] | undefined;
  #over = false;
  /** A fault found after some events of the same batch: thrown by the next call, after those events. */
  #fault: { error: unknown } | undefined;
  #first: Buffer[] | undefined;
  /** Set once the answer began (a text or tool-call event was read): an engine error after it is a broken stream. */
  #answered = false;
  /** Armed while the body is drained after `[DONE]`. */
  #drainTimer: TimerHandle | undefined;

  constructor(opened: OpenedStream, context: ChatStreamContext) {
    this.#opened = opened;
    this.#context = context;
    this.#first = opened.firstChunks;
  }

  async next(): Promise<ChatStreamEvent[]> {
    for (;;) {
      if (this.#fault !== undefined) throw this.#fault.error;
      if (this.#over) return [];
      if (this.#finalEvents !== undefined) {
        // After [DONE] the rest of the body is drained (not parsed) so the keep-alive socket can be reused.
        await this.#drain();
        this.#over = true;
        return this.#finalEvents;
      }
      let chunks: Buffer[] | null | undefined = this.#first;
      this.#first = undefined;
      if (chunks === undefined) {
        try {
          chunks = await this.#opened.feed.take();
        } catch (err) {
          if (this.#context.request.aborted) throw this.#context.request.reason;
          throw this.#broken(`dropped the stream: ${describeNetworkError(err, this.#context.apiKey)}`, {}, err);
        }
      }
      if (chunks === null) {
        // A proxy may drop the final blank line (or line ending) after [DONE]: the answer is complete all the same.
        if (!this.#parser.endsWithDone()) throw this.#broken("ended the stream without [DONE]");
        this.#over = true;
        return this.#assembler.finish();
      }
      const events: ChatStreamEvent[] = [];
      try {
        for (const chunk of chunks) {
          this.#parse(chunk, events);
          if (this.#finalEvents !== undefined) break;
        }
      } catch (err) {
        if (events.length === 0) throw err;
        this.#fault = { error: err };
      }
      if (events.length > 0) return events;
    }
  }

  /** Parses one chunk, appending its events to `out`; stops at `[DONE]`. Throws STREAM_BROKEN. */
  #parse(chunk: Buffer, out: ChatStreamEvent[]): void {
    for (const event of this.#parser.push(this.#decoder.write(chunk))) {
      // llama.cpp server's `error:` line (see sse-parser.ts), or a server that names its error event.
      if (event.event === "error") throw this.#engineFailure(parseErrorEvent(event.data));
      if (event.data === "[DONE]") {
        this.#finalEvents = this.#assembler.finish();
        return;
      }
      let object: unknown;
      try {
        object = JSON.parse(event.data);
      } catch (err) {
        throw this.#broken("sent a chunk that is not JSON", {}, err);
      }
      const engineFailure = parseEngineErrorObject(object);
      if (engineFailure !== undefined) throw this.#engineFailure(engineFailure);
      for (const assembled of this.#assembler.push(object)) {
        out.push(assembled);
        this.#answered = true;
      }
    }
    if (this.#parser.pendingLength > MAX_PENDING_CHARS) throw this.#broken("sent an SSE event larger than 1 MiB");
  }

  /**
   * The call is over: a drain still waiting loses its timer now (its read ends with the body, which the caller
   * destroys with the call), so nothing of the call stays armed.
   */
  close(): void {
    this.#clearDrainTimer();
  }

  /** Reads the body to its end, giving up (and destroying it) after DRAIN_AFTER_DONE_MS of the client's clock. */
  async #drain(): Promise<void> {
    // Usually the body ended with the read that held [DONE]: its socket is free already, nothing to wait for.
    if (this.#opened.feed.ended) return;
    // A closure and a timer only here, off the common path (a body that ended with [DONE]).
    const expired = new Promise<null>((resolve) => {
      // Ref'd: the caller awaits the drain, as it awaits a retry's backoff.
      this.#drainTimer = this.#context.clock.setTimeout(
        () => {
          this.#drainTimer = undefined;
          this.#opened.abort(new Error("the engine held the stream open after [DONE]"));
          resolve(null);
        },
        DRAIN_AFTER_DONE_MS,
        { ref: true },
      );
    });
    try {
      for (;;) {
        const chunks = await Promise.race([this.#opened.feed.take(), expired]);
        if (chunks === null) return;
      }
    } catch {
      // A body that fails after [DONE] lost nothing: the answer is complete.
    } finally {
      this.#clearDrainTimer();
    }
  }

  #clearDrainTimer(): void {
    if (this.#drainTimer === undefined) return;
    this.#context.clock.clearTimeout(this.#drainTimer);
    this.#drainTimer = undefined;
  }

  /**
   * The error an engine sent in the stream. SGLang, TGI and llama.cpp server validate a streamed request only after
   * its 200, so a prompt too long for the context window is refused here, before any of the answer: that is the same
   * refusal as a 400 (BAD_REQUEST with `details.reason` CONTEXT_LENGTH_REASON, which a caller cures by sending less).
   * Anything else, or anything after the answer began, is a broken stream.
   */
  #engineFailure(failure: { message: string; type?: string; code?: unknown }): BridgeError {
    if (!this.#answered && isContextLengthRefusalText(failure.message, [failure.type, failure.code])) {
      const { replica, apiKey } = this.#context;
      return engineError(
        ENGINE_ERROR_CODES.badRequest,
        `engine replica ${replica} refused the request: ${engineText(failure.message, apiKey)}`,
        { replica, reason: CONTEXT_LENGTH_REASON, engineErrorType: failure.type },
      );
    }
    const words = engineText(failure.message, this.#context.apiKey);
    return this.#broken(`failed mid-stream: ${words}`, { engineErrorType: failure.type });
  }

  #broken(message: string, details: Record<string, unknown> = {}, cause?: unknown): BridgeError {
    return engineError(
      ENGINE_ERROR_CODES.streamBroken,
      `engine replica ${this.#context.replica} ${redactSecret(message, this.#context.apiKey)}`,
      { replica: this.#context.replica, ...details },
      cause,
    );
  }
}
