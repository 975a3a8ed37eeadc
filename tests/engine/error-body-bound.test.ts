/**
 * A body the client reads whole (an error answer, a non-streamed completion) is bounded in bytes, and an error body
 * in time too: its status already classifies the answer, so an engine (or a proxy in front of it) that sends the
 * status and then an endless or stalled body cannot hold the request until its deadline, or without one for ever.
 */
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { after, before, describe, test } from "node:test";
import type { ChatRequest } from "../../agents/engine.ts";
import { createEngineClient } from "../../engine-client/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { collect, type RawEngine, settledWithin, startRawEngine, waitFor } from "./support.ts";

const ASK: ChatRequest = { messages: [{ role: "user", content: "x" }] };

/** Writes `piece` again and again until the client goes away. */
function endless(res: ServerResponse, piece: string): void {
  const write = () => {
    while (!res.destroyed && res.write(piece)) {}
    if (!res.destroyed) res.once("drain", write);
  };
  write();
}

describe("bodies read whole are bounded", () => {
  let answer: (res: ServerResponse) => void = () => {};
  let requests = 0;
  let server: RawEngine;
  before(async () => {
    server = await startRawEngine((res) => {
      requests++;
      answer(res);
    });
  });
  after(() => server.close());

  test("a 503 whose body never ends is OVERLOADED at once, not at the request's deadline", async () => {
    answer = (res) => {
      res.writeHead(503, { "content-type": "text/plain", "retry-after": "0" });
      endless(res, "overloaded ".repeat(100));
    };
    const engine = createEngineClient({ urls: [server.url], model: "m", retry: { maxAttempts: 1 } });
    try {
      const result = await settledWithin(
        collect(engine.stream(ASK, { agentId: "d", timeoutMs: 600_000 })),
        10_000,
        "the stream",
      );
      assert.equal(result.error?.code, "BRIDGE_ERR_ENGINE_OVERLOADED");
      assert.equal(result.error?.details.status, 503);
      assert.match(result.error?.message ?? "", /answered 503: overloaded/);
    } finally {
      await engine.close();
    }
  });

  test("an error body that stalls after its status ends after 2 s of the client's clock, with what it sent", async () => {
    answer = (res) => {
      res.writeHead(502, { "content-type": "text/plain" });
      res.write("bad gateway");
    };
    const clock = new ManualClock();
    const engine = createEngineClient({ urls: [server.url], model: "m", retry: { maxAttempts: 1 }, clock });
    try {
      const pending = collect(engine.stream(ASK, { agentId: "d" }));
      await waitFor(() => clock.pending === 1, "the client to wait for the error body");
      await clock.advance(1999);
      assert.equal(clock.pending, 1, "not before its bound");
      await clock.advance(1);
      const result = await settledWithin(pending, 5000, "the stream");
      assert.equal(result.error?.code, "BRIDGE_ERR_ENGINE_UNAVAILABLE");
      assert.equal(result.error?.details.status, 502);
      assert.match(result.error?.message ?? "", /answered 502: bad gateway/);
    } finally {
      await engine.close();
    }
  });

  test("a non-streamed answer larger than 8 MiB is refused once 8 MiB arrived, not read to its end", async () => {
    answer = (res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"choices":[{"message":{"content":"');
      endless(res, "x".repeat(64 * 1024));
    };
    const engine = createEngineClient({ urls: [server.url], model: "m", retry: { maxAttempts: 1 } });
    try {
      const before = requests;
      const error = await settledWithin(
        engine.complete(ASK, { agentId: "d", timeoutMs: 600_000 }).then(
          () => undefined,
          (err: unknown) => err as { code?: string },
        ),
        10_000,
        "complete()",
      );
      assert.equal(error?.code, "BRIDGE_ERR_ENGINE_STREAM_BROKEN");
      assert.equal(requests - before, 1, "not retried");
    } finally {
      await engine.close();
    }
  });
});
