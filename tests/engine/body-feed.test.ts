/** BodyFeed: a body's reads taken by its data events, in batches, with back-pressure and its ways of stopping. */
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import { BodyFeed } from "../../engine-client/body-feed.ts";

const text = (chunks: Buffer[] | null) => (chunks === null ? null : Buffer.concat(chunks).toString("utf8"));

test("chunks read while nobody waited come back together, in order, then null at the end", async () => {
  const body = new PassThrough();
  const feed = new BodyFeed(body);
  body.write("a");
  body.write("b");
  await new Promise((resolve) => setImmediate(resolve));
  const first = await feed.take();
  assert.equal(first?.length, 2);
  assert.equal(text(first), "ab");
  const waiting = feed.take();
  body.end("c");
  assert.equal(text(await waiting), "c");
  assert.equal(await feed.take(), null);
  assert.equal(await feed.take(), null, "stays ended");
});

test("an error is reported after the chunks read before it, and a body closed without end is an error too", async () => {
  const body = new PassThrough();
  const feed = new BodyFeed(body);
  body.write("x");
  await new Promise((resolve) => setImmediate(resolve));
  body.destroy(new Error("socket reset"));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(text(await feed.take()), "x");
  await assert.rejects(feed.take(), /socket reset/);

  const closed = new PassThrough();
  const feed2 = new BodyFeed(closed);
  const waiting = feed2.take();
  closed.destroy();
  await assert.rejects(waiting, /closed early/);
});

test("more than 1 MiB unread pauses the body until the consumer takes it", async () => {
  const body = new PassThrough({ highWaterMark: 16 });
  const feed = new BodyFeed(body);
  const big = Buffer.alloc(600 * 1024, 0x61);
  body.write(big);
  body.write(big);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(body.isPaused(), true, "paused above the limit");
  const taken = await feed.take();
  assert.equal(
    taken?.reduce((n, c) => n + c.length, 0),
    2 * big.length,
  );
  assert.equal(body.isPaused(), false, "resumed once taken");
  body.end();
  assert.equal(await feed.take(), null);
});

test("a second take while one waits is refused rather than losing chunks", async () => {
  const body = new PassThrough();
  const feed = new BodyFeed(body);
  const first = feed.take();
  await assert.rejects(feed.take(), /already waiting/);
  body.end("z");
  assert.equal(text(await first), "z");
});
