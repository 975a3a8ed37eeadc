/** The engine client against hand-written SSE from a raw server: byte-level splits, comments, odd endings. */
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { after, before, describe, test } from "node:test";
import type { ChatStreamEvent } from "../../agents/engine.ts";
import { createEngineClient } from "../../engine-client/index.ts";
import { BridgeError } from "../../errors/index.ts";
import { collect, type RawEngine, startRawEngine } from "./support.ts";

type Script = (res: ServerResponse) => Promise<void>;

const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: "x", object: "chat.completion.chunk", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
const usage = `data: ${JSON.stringify({ id: "x", choices: [], usage: { prompt_tokens: 5, completion_tokens: 2, prompt_tokens_details: { cached_tokens: 0 } } })}\n\n`;
const pause = () => new Promise((resolve) => setTimeout(resolve, 2));

describe("engine client against raw SSE", () => {
  let script: Script = async () => {};
  let server: RawEngine;
  before(async () => {
    server = await startRawEngine((res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      void script(res);
    });
  });
  after(() => server.close());
  const ask = async (s: Script, bodyTimeoutMs = 60_000) => {
    script = s;
    const engine = createEngineClient({ urls: [server.url], model: "m", retry: { maxAttempts: 1 }, bodyTimeoutMs });
    try {
      return await collect(engine.stream({ messages: [{ role: "user", content: "x" }] }, { agentId: "d" }));
    } finally {
      await engine.close();
    }
  };

  const askBatches = async (s: Script, onEvents: (events: readonly ChatStreamEvent[]) => void) => {
    script = s;
    const engine = createEngineClient({ urls: [server.url], model: "m", retry: { maxAttempts: 1 } });
    try {
      await engine.streamBatches({ messages: [{ role: "user", content: "x" }] }, { agentId: "d" }, onEvents);
      return { error: undefined, inFlight: engine.stats().inFlight };
    } catch (error) {
      return { error, inFlight: engine.stats().inFlight };
    } finally {
      await engine.close();
    }
  };

  test("streamBatches hands over the text read before a stream broke, then rejects with STREAM_BROKEN", async () => {
    const seen: ChatStreamEvent[] = [];
    const result = await askBatches(
      async (res) => {
        res.write(chunk({ content: "one " }));
        await pause();
        res.end(chunk({ content: "two" }));
      },
      (events) => seen.push(...events),
    );
    assert.equal(seen.map((e) => (e.type === "text" ? e.text : e.type)).join(""), "one two");
    assert.ok(result.error instanceof BridgeError);
    assert.equal(result.error.code, "BRIDGE_ERR_ENGINE_STREAM_BROKEN");
    assert.equal(result.inFlight, 0);
  });

  test("a throw from streamBatches' onEvents ends the stream, rejects with that error and closes the response", async () => {
    let closed!: Promise<void>;
    const fault = new Error("consumer fault");
    const result = await askBatches(
      async (res) => {
        closed = new Promise((resolve) => res.once("close", () => resolve()));
        res.write(chunk({ content: "a" }));
        // Never ends: only the client closing the connection ends this response.
      },
      () => {
        throw fault;
      },
    );
    assert.equal(result.error, fault);
    assert.equal(result.inFlight, 0);
    await closed;
  });

  test("a stream written one byte at a time, splitting a multi-byte character, arrives intact", async () => {
    const body = Buffer.from(
      `: hello\n\n${chunk({ content: "h\u00e9\u20ac\u{1f600}" })}${chunk({ content: "!" }, "stop")}${usage}data: [DONE]\n\n`,
    );
    const result = await ask(async (res) => {
      for (const byte of body) {
        res.write(Buffer.from([byte]));
        if (byte === 0xe2 || byte === 0xf0) await pause();
      }
      res.end();
    });
    assert.equal(result.error, undefined);
    assert.equal(result.text, "h\u00e9\u20ac\u{1f600}!");
    assert.deepEqual(result.events.at(-1), {
      type: "done",
      finishReason: "stop",
      usage: { promptTokens: 5, completionTokens: 2, cachedTokens: 0 },
    });
  });

  test("keep-alive comments between events and CRLF endings change nothing", async () => {
    const result = await ask(async (res) => {
      res.write(": keep-alive\r\n\r\n");
      res.write(chunk({ content: "a" }).replace(/\n/g, "\r\n"));
      await pause();
      res.write(": ping\n\n");
      res.end(`${chunk({ content: "b" }, "stop")}data: [DONE]\r\n\r\n`);
    });
    assert.equal(result.error, undefined);
    assert.equal(result.text, "ab");
  });

  test("a stream that ends without [DONE] is STREAM_BROKEN, with the text before it delivered", async () => {
    const result = await ask(async (res) => {
      res.end(chunk({ content: "partial" }));
    });
    assert.equal(result.text, "partial");
    assert.equal(result.error?.code, "BRIDGE_ERR_ENGINE_STREAM_BROKEN");
  });

  test("a stream whose [DONE] lacks its blank line (or line ending) at the very end is complete, not broken", async () => {
    for (const tail of ["data: [DONE]\n", "data: [DONE]", "data: [DONE]\r"]) {
      const result = await ask(async (res) => {
        res.end(`${chunk({ content: "whole" }, "stop")}${tail}`);
      });
      assert.equal(result.error, undefined, JSON.stringify(tail));
      assert.equal(result.text, "whole");
      assert.equal(result.events.at(-1)?.type, "done");
    }
    // Anything else left unterminated is still a broken stream.
    const cut = await ask(async (res) => {
      res.end(`${chunk({ content: "cut" })}data: {"id":"x"`);
    });
    assert.equal(cut.error?.code, "BRIDGE_ERR_ENGINE_STREAM_BROKEN");
  });

  test("a chunk that is not JSON is STREAM_BROKEN", async () => {
    const result = await ask(async (res) => {
      res.end(`${chunk({ content: "a" })}data: {not json\n\n`);
    });
    assert.equal(result.error?.code, "BRIDGE_ERR_ENGINE_STREAM_BROKEN");
  });

  test("a server that keeps the response open after [DONE] does not hold the caller", async () => {
    const result = await ask(async (res) => {
      res.write(`${chunk({ content: "done" }, "stop")}data: [DONE]\n\n`);
      // never ends the response
    }, 600_000); // far beyond the test's own timeout: only the client's drain limit can end this
    assert.equal(result.error, undefined);
    assert.equal(result.events.at(-1)?.type, "done");
  });
});
