/**
 * An engine's "prompt too long for the context window" refusal is told apart from every other 400 by
 * `details.reason` "context-length", for the wordings of vLLM, SGLang, llama.cpp server, TGI and OpenAI, and through
 * the client against the engine simulator.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isContextLengthRefusal } from "../../agents/engine.ts";
import { CONTEXT_LENGTH_REASON, createEngineClient, isContextLengthRefusalText } from "../../engine-client/index.ts";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import { BridgeError } from "../../errors/index.ts";
import { collect } from "./support.ts";

describe("context-length refusal", () => {
  test("the wordings of the engines are recognised, and other refusals are not", () => {
    const refusals = [
      // vLLM (older and newer OpenAI server), also what the engine simulator says.
      "This model's maximum context length is 1200 tokens. However, you requested 1495 tokens (1471 in the messages, 24 in the completion). Please reduce the length of the messages or completion.",
      "This model's maximum context length is 4096 tokens. However, your request has 5000 input tokens. Please reduce the length of the input messages.",
      "'max_tokens' or 'max_completion_tokens' is too large: 4096. This model's maximum context length is 4096 tokens and your request has 100 input tokens (4096 > 4096 - 100).",
      // vLLM V1 engine.
      "The decoder prompt (length 5000) is longer than the maximum model length of 4096. Make sure that `max_model_len` is no smaller than the number of text tokens.",
      // SGLang.
      "The input (5000 tokens) is longer than the model's context length (4096 tokens).",
      "Requested token count exceeds the model's maximum context length of 4096 tokens. You requested a total of 5000 tokens.",
      // llama.cpp server.
      "the request exceeds the available context size, try increasing it",
      // TGI (422).
      "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4000 `inputs` tokens and 512 `max_new_tokens`",
    ];
    for (const message of refusals) assert.ok(isContextLengthRefusalText(message), message);
    assert.ok(isContextLengthRefusalText("too long", ["invalid_request_error", "context_length_exceeded"]));
    assert.ok(isContextLengthRefusalText("", ["exceed_context_size_error"]));
    for (const message of [
      "injected failure",
      "The model `gpt-5` does not exist.",
      "Invalid API key",
      "response_format json_schema is not supported",
    ]) {
      assert.equal(isContextLengthRefusalText(message, ["invalid_request_error", 400]), false, message);
    }
  });

  test("the client marks the simulator's context-length 400 with details.reason, and no other 400", async () => {
    const sim = await startEngineSimulator({ timeScale: 0, maxModelLen: 64 });
    const engine = createEngineClient({ urls: [sim.url] });
    try {
      const tooLong = await collect(
        engine.stream({ messages: [{ role: "user", content: "x".repeat(400) }], maxTokens: 8 }, { agentId: "d" }),
      );
      assert.equal(tooLong.error?.code, "BRIDGE_ERR_ENGINE_BAD_REQUEST");
      assert.equal(tooLong.error?.details.reason, CONTEXT_LENGTH_REASON);
      assert.equal(tooLong.error?.details.status, 400);
      assert.ok(isContextLengthRefusal(tooLong.error));
      assert.ok(isContextLengthRefusal(new Error("wrapped", { cause: tooLong.error })), "found in the cause chain");

      sim.setFaults({ failRequests: { status: 400, count: 1 } });
      const other = await collect(
        engine.stream({ messages: [{ role: "user", content: "hi" }], maxTokens: 8 }, { agentId: "d" }),
      );
      assert.equal(other.error?.code, "BRIDGE_ERR_ENGINE_BAD_REQUEST");
      assert.equal(other.error?.details.reason, undefined);
      assert.equal(isContextLengthRefusal(other.error), false);
      assert.equal(
        isContextLengthRefusal(
          new BridgeError("BRIDGE_ERR_ENGINE_UNAVAILABLE", "x", { reason: CONTEXT_LENGTH_REASON }),
        ),
        false,
        "only a bad request",
      );
    } finally {
      await engine.close();
      await sim.close();
    }
  });
});
