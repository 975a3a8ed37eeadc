/**
 * Refusals that arrive inside a 200 stream. SGLang and TGI validate a streamed request inside the stream and send the
 * refusal as an error object (`data: {"error": ...}`) after the 200; llama.cpp server sends its own as an `error:`
 * line (`server_sent_event(sink, "error", ...)`), then ends the body. A context-length refusal that comes before any
 * of the answer is the same refusal as a 400 (BAD_REQUEST with `details.reason` "context-length", so a DeviceAgent can
 * ask again without history), not a broken stream; anything else in the stream stays STREAM_BROKEN, with the engine's
 * words.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { isContextLengthRefusal } from "../../agents/engine.ts";
import { CONTEXT_LENGTH_REASON, createEngineClient } from "../../engine-client/index.ts";
import { collect, type RawEngine, startRawEngine } from "./support.ts";

const chunk = (delta: Record<string, unknown>) =>
  `data: ${JSON.stringify({ id: "x", object: "chat.completion.chunk", choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`;

const SGLANG_REFUSAL = `data: ${JSON.stringify({
  error: {
    object: "error",
    message: "The input (5000 tokens) is longer than the model's context length (4096 tokens).",
    type: "BadRequestError",
    param: null,
    code: 400,
  },
})}\n\n`;
const TGI_REFUSAL = `data:${JSON.stringify({
  error:
    "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4000 `inputs` tokens and 512 `max_new_tokens`",
  error_type: "validation",
})}\n\n`;
const LLAMA_CPP_REFUSAL = `error: ${JSON.stringify({
  code: 400,
  message: "the request exceeds the available context size, try increasing it",
  type: "exceed_context_size_error",
  n_prompt_tokens: 5000,
  n_ctx: 4096,
})}\n\n`;

describe("refusals inside a 200 stream", () => {
  let body = "";
  let server: RawEngine;
  before(async () => {
    server = await startRawEngine((res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.end(body);
    });
  });
  after(() => server.close());

  const ask = async (stream: string) => {
    body = stream;
    const engine = createEngineClient({ urls: [server.url], model: "m", retry: { maxAttempts: 1 } });
    try {
      const result = await collect(engine.stream({ messages: [{ role: "user", content: "x" }] }, { agentId: "d" }));
      return { ...result, stats: engine.stats() };
    } finally {
      await engine.close();
    }
  };

  test("a context-length error object before the answer (SGLang, TGI) is the context-length BAD_REQUEST", async () => {
    for (const refusal of [SGLANG_REFUSAL, TGI_REFUSAL]) {
      // SGLang sends the assistant's role chunk (no text) before it refuses; [DONE] follows the refusal.
      const result = await ask(`${chunk({ role: "assistant", content: "" })}${refusal}data: [DONE]\n\n`);
      assert.equal(result.error?.code, "BRIDGE_ERR_ENGINE_BAD_REQUEST", refusal);
      assert.equal(result.error?.details.reason, CONTEXT_LENGTH_REASON);
      assert.ok(isContextLengthRefusal(result.error));
      assert.deepEqual(result.events, []);
      assert.equal(result.stats.replicas[0].failures, 0, "a refusal is not a failing replica");
    }
  });

  test("llama.cpp server's `error:` line is its refusal: context-length before the answer, its words otherwise", async () => {
    const refused = await ask(LLAMA_CPP_REFUSAL);
    assert.equal(refused.error?.code, "BRIDGE_ERR_ENGINE_BAD_REQUEST");
    assert.equal(refused.error?.details.reason, CONTEXT_LENGTH_REASON);
    assert.match(refused.error?.message ?? "", /exceeds the available context size/);

    const failed = await ask(
      `${chunk({ content: "Hel" })}error: ${JSON.stringify({ code: 500, message: "llama_decode failed", type: "server_error" })}\n\n`,
    );
    assert.equal(failed.text, "Hel");
    assert.equal(failed.error?.code, "BRIDGE_ERR_ENGINE_STREAM_BROKEN");
    assert.match(failed.error?.message ?? "", /failed mid-stream: llama_decode failed/);
    assert.equal(failed.error?.details.engineErrorType, "server_error");
  });

  test("a named `event: error` is an engine error too", async () => {
    const result = await ask(`event: error\ndata: ${JSON.stringify({ message: "model crashed" })}\n\n`);
    assert.equal(result.error?.code, "BRIDGE_ERR_ENGINE_STREAM_BROKEN");
    assert.match(result.error?.message ?? "", /failed mid-stream: model crashed/);
  });

  test("once part of the answer was streamed, even a context-length error object is a broken stream", async () => {
    const result = await ask(`${chunk({ content: "partial" })}${SGLANG_REFUSAL}data: [DONE]\n\n`);
    assert.equal(result.text, "partial");
    assert.equal(result.error?.code, "BRIDGE_ERR_ENGINE_STREAM_BROKEN");
    assert.equal(isContextLengthRefusal(result.error), false);
  });
});
