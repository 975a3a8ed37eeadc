/** Helpers shared by the engine tests. */
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { ChatStreamEvent } from "../../agents/engine.ts";
import { BodyFeed } from "../../engine-client/body-feed.ts";
import { BridgeError } from "../../errors/index.ts";

/** Collects a stream; returns the events, or the error it threw (with the events before it). */
export async function collect(
  stream: AsyncIterable<ChatStreamEvent>,
): Promise<{ events: ChatStreamEvent[]; text: string; error?: BridgeError }> {
  const events: ChatStreamEvent[] = [];
  try {
    for await (const event of stream) events.push(event);
  } catch (err) {
    if (!(err instanceof BridgeError)) throw err;
    return { events, text: textOf(events), error: err };
  }
  return { events, text: textOf(events) };
}

export function textOf(events: ChatStreamEvent[]): string {
  return events.map((e) => (e.type === "text" ? e.text : "")).join("");
}

/** Polls `condition` every few ms until it holds; fails the test after `timeoutMs` (a hang guard, not a timing assertion). */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A deterministic random source cycling through `values`. */
export function fixedRandom(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length];
}

/** Fails the test if `promise` has not settled within `ms` of real time: a hang guard, not a timing assertion. */
export async function settledWithin<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms of real time`)), ms);
  });
  try {
    return await Promise.race([promise, guard]);
  } finally {
    clearTimeout(timer);
  }
}

/** A hand-written engine on 127.0.0.1 port 0; see {@link startRawEngine}. */
export interface RawEngine {
  /** Its base URL, for the client's `urls`. */
  url: string;
  /** Closes its open connections (a stalled answer included) and the server. */
  close(): Promise<void>;
}

/**
 * Starts an engine that answers every request with `answer` once the request's body has been read: for tests of what
 * the client makes of bytes no real engine would write (a split SSE event, an endless error body), not of what it sends.
 */
export async function startRawEngine(answer: (res: ServerResponse) => void): Promise<RawEngine> {
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => answer(res));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A BodyFeed fed by hand, as the stream's dispatch handler feeds it, with the pauses and resumes it asked for. */
export interface HandFedBody {
  feed: BodyFeed;
  write(text: string | Buffer): void;
  /** Writes `text` if given, then ends the body. */
  end(text?: string): void;
  fail(error: unknown): void;
  /** Whether the feed has paused its source and not resumed it yet. */
  readonly paused: boolean;
  /** How many times the feed paused, and resumed, its source. */
  readonly pauses: number;
  readonly resumes: number;
}

export function handFedBody(): HandFedBody {
  let paused = false;
  let pauses = 0;
  let resumes = 0;
  const feed = new BodyFeed({
    pause: () => {
      paused = true;
      pauses++;
    },
    resume: () => {
      paused = false;
      resumes++;
    },
  });
  return {
    feed,
    write: (text) => feed.push(typeof text === "string" ? Buffer.from(text) : text),
    end: (text) => {
      if (text !== undefined) feed.push(Buffer.from(text));
      feed.end();
    },
    fail: (error) => feed.fail(error),
    get paused() {
      return paused;
    },
    get pauses() {
      return pauses;
    },
    get resumes() {
      return resumes;
    },
  };
}

/** POSTs `body` as JSON to the engine (simulator) at `url`'s chat completions; its status and text. */
export async function postChat(url: string, body: unknown): Promise<{ status: number; text: string }> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}
