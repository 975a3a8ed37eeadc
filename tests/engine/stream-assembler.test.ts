import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { StreamAssembler, buildChatBody } from "../../engine-client/index.ts";

describe("stream assembler", () => {
  test("text deltas become text events and usage with cached tokens ends in one done event", () => {
    const a = new StreamAssembler();
    const events = [
      ...a.push({ choices: [{ index: 0, delta: { role: "assistant", content: "" } }] }),
      ...a.push({ choices: [{ index: 0, delta: { content: "Hi" } }] }),
      ...a.push({ choices: [{ index: 0, delta: { content: " there" }, finish_reason: "stop" }] }),
      ...a.push({
        choices: [],
        usage: { prompt_tokens: 40, completion_tokens: 2, prompt_tokens_details: { cached_tokens: 32 } },
      }),
      ...a.finish(),
    ];
    assert.deepEqual(events, [
      { type: "text", text: "Hi" },
      { type: "text", text: " there" },
      { type: "done", finishReason: "stop", usage: { promptTokens: 40, completionTokens: 2, cachedTokens: 32 } },
    ]);
  });

  test("tool call fragments are assembled by index, even interleaved, and emitted whole in index order", () => {
    const a = new StreamAssembler();
    const push = (tool_calls: unknown[]) => a.push({ choices: [{ index: 0, delta: { tool_calls } }] });
    assert.deepEqual(push([{ index: 1, id: "c2", type: "function", function: { name: "b", arguments: "" } }]), []);
    push([{ index: 0, id: "c1", type: "function", function: { name: "a", arguments: '{"x"' } }]);
    push([{ index: 1, function: { arguments: '{"y":2}' } }]);
    push([{ index: 0, function: { arguments: ":1}" } }]);
    const closing = a.push({ choices: [{ index: 0, delta: {}, finish_reason: "tool_calls" }] });
    assert.deepEqual(closing, [
      { type: "tool-call", call: { id: "c1", name: "a", arguments: '{"x":1}' } },
      { type: "tool-call", call: { id: "c2", name: "b", arguments: '{"y":2}' } },
    ]);
    const done = a.finish();
    assert.equal(done.length, 1);
    assert.equal(done[0].type, "done");
  });

  test("a second call sent under an index already used (a new id there: SGLang) is its own call, not merged", () => {
    const a = new StreamAssembler();
    const push = (tool_calls: unknown[]) => a.push({ choices: [{ index: 0, delta: { tool_calls } }] });
    // As SGLang streamed parallel calls: every fragment at index 0, each call's id repeated in its fragments.
    push([{ index: 0, id: "0", type: "function", function: { name: "mul", arguments: "" } }]);
    push([{ index: 0, id: "0", type: "function", function: { arguments: '{"a":3,"b":12}' } }]);
    push([{ index: 0, id: "1", type: "function", function: { name: "add", arguments: "" } }]);
    push([{ index: 0, id: "1", type: "function", function: { arguments: '{"a":11,' } }]);
    // A continuation without an id (vLLM's style) belongs to the call opened last at its index.
    push([{ index: 0, function: { arguments: '"b":49}' } }]);
    const closing = a.push({ choices: [{ index: 0, delta: {}, finish_reason: "tool_calls" }] });
    assert.deepEqual(closing, [
      { type: "tool-call", call: { id: "0", name: "mul", arguments: '{"a":3,"b":12}' } },
      { type: "tool-call", call: { id: "1", name: "add", arguments: '{"a":11,"b":49}' } },
    ]);
  });

  test("a stream without usage still ends with zero usage rather than failing", () => {
    const a = new StreamAssembler();
    a.push({ choices: [{ index: 0, delta: { content: "x" }, finish_reason: "length" }] });
    assert.deepEqual(a.finish(), [
      { type: "done", finishReason: "length", usage: { promptTokens: 0, completionTokens: 0, cachedTokens: 0 } },
    ]);
  });

  test("the request body carries tools, json_schema, tool results and usage streaming in OpenAI's shape", () => {
    const body = buildChatBody(
      {
        messages: [
          { role: "user", content: "q" },
          { role: "assistant", content: null, toolCalls: [{ id: "t1", name: "f", arguments: "{}" }] },
          { role: "tool", toolCallId: "t1", content: "ok" },
        ],
        tools: [{ name: "f", description: "d", parameters: { type: "object" } }],
        jsonSchema: { name: "out", schema: { type: "object" } },
        maxTokens: 10,
      },
      "m",
      true,
    );
    assert.deepEqual(body, {
      model: "m",
      messages: [
        { role: "user", content: "q" },
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: "t1", type: "function", function: { name: "f", arguments: "{}" } }],
        },
        { role: "tool", tool_call_id: "t1", content: "ok" },
      ],
      tools: [{ type: "function", function: { name: "f", description: "d", parameters: { type: "object" } } }],
      max_tokens: 10,
      response_format: { type: "json_schema", json_schema: { name: "out", schema: { type: "object" }, strict: true } },
      stream: true,
      stream_options: { include_usage: true },
    });
  });
});
