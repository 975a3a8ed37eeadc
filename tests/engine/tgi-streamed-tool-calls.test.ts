/**
 * TGI before 3.2 streams `delta.tool_calls` as one object rather than a list, never names the call, and carries the
 * whole `{"function": {"_name": ..., ...}}` output in its `arguments` (router/src/lib.rs and server.rs of TGI 3.1.1).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createEngineClient, StreamAssembler } from "../../engine-client/index.ts";
import { collect, type RawEngine, startRawEngine } from "./support.ts";

/** One chunk as TGI 3.1.1 writes it while streaming a tool call: one generated token as `arguments`. */
function tgiToolChunk(token: string, finish: string | null = null, usage: unknown = null): string {
  const delta = {
    role: "assistant",
    tool_calls: { index: 0, id: "", type: "function", function: { name: null, arguments: token } },
  };
  const chunk = {
    object: "chat.completion.chunk",
    id: "",
    created: 1_700_000_000,
    model: "m",
    system_fingerprint: "3.1.1-sha-0000000",
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    usage,
  };
  return `data: ${JSON.stringify(chunk)}\n\n`;
}

// The tokens of `{"function": {"_name": "set_led", "on": true, "level": 3}}` as a tokenizer splits such text.
const TOKENS = ['{"', "function", '":', ' {"', "_", "name", '":', ' "', "set", "_led", '",', ' "', "on", '":', " true"];
const LAST_TOKENS = [", ", '"level', '":', " 3", "}}"];

describe("TGI's streamed tool calls (before 3.2)", () => {
  let server: RawEngine;
  before(async () => {
    server = await startRawEngine((res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      for (const token of [...TOKENS, ...LAST_TOKENS.slice(0, -1)]) res.write(tgiToolChunk(token));
      const usage = { prompt_tokens: 30, completion_tokens: 20, total_tokens: 50 };
      res.write(tgiToolChunk(LAST_TOKENS.at(-1)!, "stop", usage));
      res.end("data: [DONE]\n\n");
    });
  });
  after(() => server.close());

  test("the object form is read as one fragment and the call comes out named, with its own arguments", async () => {
    const engine = createEngineClient({ urls: [server.url], model: "m", retry: { maxAttempts: 1 } });
    try {
      const tools = [{ name: "set_led", description: "LED", parameters: { type: "object" } }];
      const { events, error } = await collect(
        engine.stream({ messages: [{ role: "user", content: "light on" }], tools }, { agentId: "d" }),
      );
      assert.equal(error, undefined);
      assert.deepEqual(events, [
        { type: "tool-call", call: { id: "call_0", name: "set_led", arguments: '{"on":true,"level":3}' } },
        { type: "done", finishReason: "stop", usage: { promptTokens: 30, completionTokens: 20, cachedTokens: 0 } },
      ]);
    } finally {
      await engine.close();
    }
  });
});

describe("the object form of delta.tool_calls in the stream assembler", () => {
  const push = (assembler: StreamAssembler, toolCalls: unknown, finish: string | null = null) =>
    assembler.push({ choices: [{ index: 0, delta: { tool_calls: toolCalls }, finish_reason: finish }] });

  test("is read exactly as a one-element list, and what is not an object is ignored in both forms", () => {
    const fragments = [
      { index: 0, id: "c1", type: "function", function: { name: "a", arguments: '{"x"' } },
      "not a fragment",
      7,
      null,
      { index: 0, function: { arguments: ":1}" } },
    ];
    const asObjects = new StreamAssembler();
    const asLists = new StreamAssembler();
    for (const fragment of fragments) {
      push(asObjects, fragment);
      push(asLists, [fragment]);
    }
    const expected = [{ type: "tool-call", call: { id: "c1", name: "a", arguments: '{"x":1}' } }];
    assert.deepEqual(push(asObjects, undefined, "tool_calls"), expected);
    assert.deepEqual(push(asLists, undefined, "tool_calls"), expected);
  });

  test("only a call the stream never named is unwrapped, and only from TGI's exact envelope", () => {
    const a = new StreamAssembler();
    const envelope = '{"function":{"_name":"b","y":2}}';
    // Named by the stream: its arguments are its own, even when they look like the envelope.
    push(a, { index: 0, id: "named", function: { name: "a", arguments: envelope } });
    // Unnamed, but not the envelope (another key beside "function"; no _name; not JSON): left as sent.
    push(a, { index: 1, id: "extra", function: { arguments: '{"function":{"_name":"c"},"more":1}' } });
    push(a, { index: 2, id: "no-name", function: { arguments: '{"function":{"y":2}}' } });
    push(a, { index: 3, id: "broken", function: { arguments: '{"function":' } });
    assert.deepEqual(push(a, undefined, "tool_calls"), [
      { type: "tool-call", call: { id: "named", name: "a", arguments: envelope } },
      { type: "tool-call", call: { id: "extra", name: "", arguments: '{"function":{"_name":"c"},"more":1}' } },
      { type: "tool-call", call: { id: "no-name", name: "", arguments: '{"function":{"y":2}}' } },
      { type: "tool-call", call: { id: "broken", name: "", arguments: '{"function":' } },
    ]);
  });
});
