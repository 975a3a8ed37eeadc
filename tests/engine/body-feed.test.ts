/** BodyFeed: a body's reads pushed by its source, taken in batches, with back-pressure and its ways of stopping. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { BodyFeed, PAUSE_ABOVE_BYTES } from "../../engine-client/body-feed.ts";
import { handFedBody } from "./support.ts";

const text = (chunks: Buffer[] | null) => (chunks === null ? null : Buffer.concat(chunks).toString("utf8"));
const bytes = (chunks: Buffer[] | null) => (chunks ?? []).reduce((n, c) => n + c.length, 0);

test("chunks read while nobody waited come back together, in order, then null at the end", async () => {
  const body = handFedBody();
  body.write("a");
  body.write("b");
  const first = await body.feed.take();
  assert.equal(first?.length, 2);
  assert.equal(text(first), "ab");
  const waiting = body.feed.take();
  body.end("c");
  assert.equal(text(await waiting), "c");
  assert.equal(await body.feed.take(), null);
  assert.equal(await body.feed.take(), null, "stays ended");
});

test("an error is reported after the chunks read before it; nothing read after the end or the error counts", async () => {
  const body = handFedBody();
  body.write("x");
  body.fail(new Error("socket reset"));
  body.write("late");
  assert.equal(text(await body.feed.take()), "x");
  await assert.rejects(body.feed.take(), /socket reset/);

  const waitingBody = handFedBody();
  const waiting = waitingBody.feed.take();
  waitingBody.fail(new Error("dropped"));
  await assert.rejects(waiting, /dropped/);

  const ended = handFedBody();
  ended.end("a");
  ended.fail(new Error("after the end"));
  assert.equal(text(await ended.feed.take()), "a");
  assert.equal(await ended.feed.take(), null, "the first way of stopping wins");
});

test("more than PAUSE_ABOVE_BYTES unread pauses the source once, until the consumer takes it", async () => {
  const body = handFedBody();
  const big = Buffer.alloc(600 * 1024, 0x61);
  body.write(big);
  assert.equal(body.paused, false, "not at 600 KiB");
  body.write(big);
  assert.equal(body.paused, true, "paused above the limit");
  body.write(big);
  assert.equal(body.pauses, 1, "paused once, however much more arrives");
  const taken = await body.feed.take();
  assert.equal(bytes(taken), 3 * big.length);
  assert.equal(body.paused, false, "resumed once taken");
  assert.equal(body.resumes, 1);
  body.end();
  assert.equal(await body.feed.take(), null);
});

test("a read pushed by the source's resume, inside take, lands in the next batch", async () => {
  const big = Buffer.alloc(PAUSE_ABOVE_BYTES + 1, 0x62);
  let resumes = 0;
  const feed: BodyFeed = new BodyFeed({
    pause: () => {},
    // undici's parser flushes what the socket holds when resumed, synchronously.
    resume: () => {
      resumes++;
      feed.push(Buffer.from("next"));
    },
  });
  feed.push(big);
  assert.equal(bytes(await feed.take()), big.length);
  assert.equal(resumes, 1);
  assert.equal(text(await feed.take()), "next");
});

test("an ended body is not resumed when its backlog is taken", async () => {
  const body = handFedBody();
  body.write(Buffer.alloc(PAUSE_ABOVE_BYTES + 1));
  body.end();
  assert.equal(body.paused, true);
  assert.equal(bytes(await body.feed.take()), PAUSE_ABOVE_BYTES + 1);
  assert.equal(body.resumes, 0, "a finished request has nothing to resume");
  assert.equal(await body.feed.take(), null);
});

test("a second take while one waits is refused rather than losing chunks", async () => {
  const body = handFedBody();
  const first = body.feed.take();
  await assert.rejects(body.feed.take(), /already waiting/);
  body.end("z");
  assert.equal(text(await first), "z");
});
