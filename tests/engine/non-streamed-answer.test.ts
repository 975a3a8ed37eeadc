/**
 * What `complete()` makes of non-streamed answers as the servers actually write them, from a raw server: shapes the
 * simulator (vLLM's) never sends.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createEngineClient } from "../../engine-client/index.ts";
import { BridgeError } from "../../errors/index.ts";
import { type RawEngine, startRawEngine } from "./support.ts";

describe("a non-streamed answer", () => {
  let body: unknown;
  let server: RawEngine;
  before(async () => {
    server = await startRawEngine((res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    });
  });
  after(() => server.close());

  /** A chat.completion holding `message`, as the servers write one. */
  const answer = (message: Record<string, unknown>, finishReason: string, usage?: Record<string, number>) => ({
    object: "chat.completion",
    model: "m",
    choices: [{ index: 0, message: { role: "assistant", ...message }, finish_reason: finishReason }],
    ...(usage === undefined ? {} : { usage }),
  });

  const complete = async () => {
    const engine = createEngineClient({ urls: [server.url], model: "m", retry: { maxAttempts: 1 } });
    try {
      return await engine.complete({ messages: [{ role: "user", content: "x" }] }, { agentId: "d" });
    } finally {
      await engine.close();
    }
  };

  test("a tool call whose arguments are a JSON object (TGI 2.x and 3.0) keeps them, as JSON text", async () => {
    body = answer(
      {
        tool_calls: [
          { id: "0", type: "function", function: { description: null, name: "set", arguments: { on: true } } },
        ],
      },
      "eos_token",
      { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 },
    );
    const got = await complete();
    assert.equal(got.toolCalls.length, 1);
    assert.equal(got.toolCalls[0].name, "set");
    assert.deepEqual(JSON.parse(got.toolCalls[0].arguments), { on: true });
  });

  test("a tool call with arguments as the JSON text OpenAI specifies, and content null, is read as sent", async () => {
    body = answer(
      {
        content: null,
        tool_calls: [{ id: "call_1", type: "function", function: { name: "set", arguments: '{"on": false}' } }],
      },
      "tool_calls",
    );
    const got = await complete();
    assert.equal(got.text, "");
    assert.deepEqual(got.toolCalls, [{ id: "call_1", name: "set", arguments: '{"on": false}' }]);
    assert.deepEqual(got.usage, { promptTokens: 0, completionTokens: 0, cachedTokens: 0 });
  });

  test("a plain answer reads the same with tool_calls: [] (vLLM) and without the key (servers that omit it)", async () => {
    body = answer({ content: "hi", tool_calls: [] }, "stop");
    const listed = await complete();
    body = answer({ content: "hi" }, "stop");
    const omitted = await complete();
    assert.deepEqual(listed, omitted);
    assert.equal(listed.text, "hi");
    assert.deepEqual(listed.toolCalls, []);
  });

  test("an answer whose connection drops after its first byte is STREAM_BROKEN, not sent again", async () => {
    let requests = 0;
    // The engine generated the whole answer and began sending it: the docs retry only before the first byte.
    const dropping = await startRawEngine((res) => {
      requests++;
      res.writeHead(200, { "content-type": "application/json", "content-length": "1000" });
      res.write('{"choices":[{"message":{"content":"par');
      setImmediate(() => res.socket?.destroy());
    });
    const engine = createEngineClient({ urls: [dropping.url], model: "m", retry: { baseDelayMs: 0, maxDelayMs: 0 } });
    try {
      const error = await engine.complete({ messages: [{ role: "user", content: "x" }] }, { agentId: "d" }).then(
        () => assert.fail("the answer was cut"),
        (err: unknown) => err,
      );
      assert.ok(error instanceof BridgeError);
      assert.equal(error.code, "BRIDGE_ERR_ENGINE_STREAM_BROKEN");
      assert.equal(requests, 1, "nothing is retried after the first byte");
      assert.equal(engine.stats().retries, 0);
    } finally {
      await engine.close();
      await dropping.close();
    }
  });
});
