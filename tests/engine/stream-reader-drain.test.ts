/**
 * After `[DONE]` the reader drains the rest of the body (so the keep-alive socket can be reused) for at most 1000 ms
 * of the client's clock, then destroys the body: a fake clock decides when that is, never the wall clock.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ChatStreamEvent } from "../../agents/engine.ts";
import type { OpenedStream } from "../../engine-client/stream-dispatch.ts";
import { ChatStreamReader } from "../../engine-client/stream-reader.ts";
import { ManualClock, settle } from "../support/manual-clock.ts";
import { type HandFedBody, handFedBody } from "./support.ts";

const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: "x", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;

/** A reader whose first read holds the whole answer and `[DONE]`, with the body left open after it. */
function readerAfterDone(clock: ManualClock): { reader: ChatStreamReader; body: HandFedBody; aborts: Error[] } {
  const body = handFedBody();
  const aborts: Error[] = [];
  const opened: OpenedStream = {
    feed: body.feed,
    firstChunks: [Buffer.from(`${chunk({ content: "hi" }, "stop")}data: [DONE]\n\n`)],
    abort: (reason) => {
      aborts.push(reason);
      body.fail(reason);
    },
  };
  const reader = new ChatStreamReader(opened, {
    replica: "http://engine",
    apiKey: undefined,
    request: { aborted: false, reason: undefined },
    clock,
  });
  return { reader, body, aborts };
}

/** Whether `promise` has settled, after letting queued callbacks run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(
    () => (done = true),
    () => (done = true),
  );
  await settle();
  return done;
}

describe("the drain after [DONE]", () => {
  test("gives up (destroying the body) only when the client's clock has moved 1000 ms", async () => {
    const clock = new ManualClock();
    const { reader, aborts } = readerAfterDone(clock);
    assert.deepEqual(await reader.next(), [{ type: "text", text: "hi" }]);
    const last = reader.next();
    assert.equal(clock.pending, 1, "the drain's timer is armed on the client's clock");
    assert.equal(await settled(last), false);
    await clock.advance(999);
    assert.equal(await settled(last), false, "not before 1000 ms of the client's clock");
    assert.equal(aborts.length, 0);
    await clock.advance(1);
    const events: ChatStreamEvent[] = await last;
    assert.equal(events.at(-1)?.type, "done", "the answer is complete all the same");
    assert.equal(aborts.length, 1, "the body held open is destroyed");
    assert.match(aborts[0].message, /held the stream open after \[DONE\]/);
    assert.equal(clock.pending, 0);
    assert.deepEqual(await reader.next(), []);
  });

  test("ends as soon as the body ends, and leaves no timer behind", async () => {
    const clock = new ManualClock();
    const { reader, body, aborts } = readerAfterDone(clock);
    await reader.next();
    const last = reader.next();
    assert.equal(clock.pending, 1);
    body.end(": trailing comment\n\n");
    assert.equal((await last).at(-1)?.type, "done");
    assert.equal(clock.pending, 0, "the drain's timer is cleared");
    assert.equal(aborts.length, 0);
  });

  test("arms nothing when the body had already ended with [DONE]", async () => {
    const clock = new ManualClock();
    const { reader, body } = readerAfterDone(clock);
    body.end();
    await reader.next();
    assert.equal((await reader.next()).at(-1)?.type, "done");
    assert.equal(clock.pending, 0);
  });
});
