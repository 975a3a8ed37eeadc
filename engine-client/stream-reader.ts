/**
 * Reads an opened SSE response into `ChatStreamEvent`s: bytes -> UTF-8 text (multi-byte characters may be
 * split across chunks) -> SSE events -> JSON chunks -> assembled events. Anything wrong after the first byte
 * is BRIDGE_ERR_ENGINE_STREAM_BROKEN: the caller may already have shown part of the answer, so it is never
 * silently retried.
 */
import type { ChatStreamEvent } from "../agents/engine.ts";
import { ENGINE_ERROR_CODES, engineError, redactSecret } from "./errors.ts";
import type { OpenedStream } from "./http.ts";
import { describeNetworkError } from "./http.ts";
import { SseParser } from "./sse-parser.ts";
import { StreamAssembler } from "./stream-assembler.ts";
import { parseEngineErrorObject } from "./wire.ts";

/** An SSE line longer than this (no line break in 1 MiB) is a broken server, not a big token. */
const MAX_PENDING_CHARS = 1 << 20;

/**
 * After `[DONE]` the body should end at once; draining it keeps the keep-alive socket reusable. A server that
 * holds the response open instead gets this long before the body is destroyed (closing that socket).
 */
const DRAIN_AFTER_DONE_MS = 1000;

async function drainStep(opened: OpenedStream): Promise<IteratorResult<Buffer>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<IteratorResult<Buffer>>((resolve) => {
    timer = setTimeout(() => {
      opened.body.destroy();
      resolve({ done: true, value: undefined });
    }, DRAIN_AFTER_DONE_MS);
  });
  try {
    return await Promise.race([opened.chunks.next(), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Yields the stream's events; the last one is `done`. Throws STREAM_BROKEN on an error object, bad JSON, a
 * dropped connection or an end without `[DONE]`; rethrows `signal.reason` when the request was aborted.
 */
export async function* readChatStream(
  opened: OpenedStream,
  context: { replica: string; apiKey: string | undefined; signal: AbortSignal },
): AsyncGenerator<ChatStreamEvent> {
  const decoder = new TextDecoder("utf-8");
  const parser = new SseParser();
  const assembler = new StreamAssembler();
  let finalEvents: ChatStreamEvent[] | undefined;
  let chunk: Buffer | undefined = opened.firstChunk;
  const broken = (message: string, details: Record<string, unknown> = {}, cause?: unknown) =>
    engineError(
      ENGINE_ERROR_CODES.streamBroken,
      `engine replica ${context.replica} ${redactSecret(message, context.apiKey)}`,
      { replica: context.replica, ...details },
      cause,
    );
  while (chunk !== undefined) {
    // After [DONE] the rest of the body is drained (not parsed) so the keep-alive socket can be reused.
    if (finalEvents === undefined) {
      for (const event of parser.push(decoder.decode(chunk, { stream: true }))) {
        if (finalEvents !== undefined) break;
        if (event.data === "[DONE]") {
          finalEvents = assembler.finish();
          break;
        }
        let object: unknown;
        try {
          object = JSON.parse(event.data);
        } catch (err) {
          throw broken("sent a chunk that is not JSON", {}, err);
        }
        const engineFailure = parseEngineErrorObject(object);
        if (engineFailure !== undefined) {
          throw broken(`failed mid-stream: ${engineFailure.message}`, { engineErrorType: engineFailure.type });
        }
        for (const out of assembler.push(object)) yield out;
      }
      if (parser.pendingLength > MAX_PENDING_CHARS) throw broken("sent an SSE event larger than 1 MiB");
    }
    let next: IteratorResult<Buffer>;
    try {
      next = finalEvents === undefined ? await opened.chunks.next() : await drainStep(opened);
    } catch (err) {
      if (context.signal.aborted) throw context.signal.reason;
      if (finalEvents !== undefined) break;
      throw broken(`dropped the stream: ${describeNetworkError(err, context.apiKey)}`, {}, err);
    }
    chunk = next.done ? undefined : next.value;
  }
  if (finalEvents === undefined) throw broken("ended the stream without [DONE]");
  for (const out of finalEvents) yield out;
}
