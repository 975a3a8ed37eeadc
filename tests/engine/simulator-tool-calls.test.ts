/** The simulator's non-streamed tool calls have vLLM's shape, and the client reads them back. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { createEngineClient } from "../../engine-client/index.ts";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";

const TOOL = {
  type: "function",
  function: { name: "set_led", description: "LED", parameters: { type: "object", properties: {} } },
};

test("a non-streamed tool call is {id, type: function, function: {name, arguments}} with no id inside function", async () => {
  const sim = await startEngineSimulator({ timeScale: 0 });
  const engine = createEngineClient({ urls: [sim.url], model: sim.model });
  try {
    const res = await fetch(`${sim.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: sim.model,
        messages: [{ role: "user", content: "please set_led now" }],
        tools: [TOOL],
        stream: false,
      }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as {
      choices: Array<{ finish_reason: string; message: { content: unknown; tool_calls?: unknown[] } }>;
    };
    const [choice] = body.choices;
    assert.equal(choice.finish_reason, "tool_calls");
    assert.equal(choice.message.content, null);
    const calls = choice.message.tool_calls ?? [];
    assert.equal(calls.length, 1);
    const call = calls[0] as { id: unknown; type: unknown; function: Record<string, unknown> };
    assert.deepEqual(Object.keys(call).sort(), ["function", "id", "type"]);
    assert.equal(typeof call.id, "string");
    assert.ok((call.id as string).length > 0);
    assert.equal(call.type, "function");
    assert.deepEqual(Object.keys(call.function).sort(), ["arguments", "name"]);
    assert.equal(call.function.name, "set_led");
    assert.doesNotThrow(() => JSON.parse(call.function.arguments as string));

    const completion = await engine.complete(
      {
        messages: [{ role: "user", content: "please set_led now" }],
        tools: [{ name: "set_led", description: "LED", parameters: { type: "object", properties: {} } }],
      },
      { agentId: "d" },
    );
    assert.equal(completion.toolCalls.length, 1);
    assert.equal(completion.toolCalls[0].name, "set_led");
    assert.ok(completion.toolCalls[0].id.length > 0, "the client reads the id from beside function");
  } finally {
    await engine.close();
    await sim.close();
  }
});
