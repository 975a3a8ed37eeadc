import assert from "node:assert/strict";
import { test } from "node:test";
import type { ChatRequest, ChatTool } from "../../agents/engine.ts";
import { DEVICE_TOOLS } from "../../agents/device/index.ts";
import { encodeChatBody } from "../../engine-client/chat-body.ts";
import { buildChatBody } from "../../engine-client/wire.ts";

const messages: ChatRequest["messages"] = [
  { role: "system", content: "You are a device agent." },
  { role: "user", content: 'Status? "quoted" and \u0000 odd' },
];

function tool(name: string): ChatTool {
  return {
    name,
    description: `the ${name} tool`,
    parameters: { type: "object", properties: { n: { type: "integer" } } },
  };
}

test("a frozen tool list is spliced in: the body text equals JSON.stringify(buildChatBody) in every shape", () => {
  const shapes: ChatRequest[] = [
    { messages, tools: DEVICE_TOOLS },
    { messages, tools: DEVICE_TOOLS, maxTokens: 64, temperature: 0.2 },
    { messages, tools: DEVICE_TOOLS, toolChoice: "none", maxTokens: 64 },
    { messages, tools: DEVICE_TOOLS, jsonSchema: { name: "s", schema: { type: "object" } } },
  ];
  for (const request of shapes) {
    for (const model of ["m", undefined]) {
      for (const stream of [true, false]) {
        assert.equal(
          encodeChatBody(request, model, stream),
          JSON.stringify(buildChatBody(request, model, stream)),
          JSON.stringify({ model, stream }),
        );
      }
    }
  }
});

test("DEVICE_TOOLS is frozen all the way down, so its JSON can be made once", () => {
  const walk = (value: unknown): void => {
    if (typeof value !== "object" || value === null) return;
    assert.ok(Object.isFrozen(value));
    for (const inner of Object.values(value)) walk(inner);
  };
  walk(DEVICE_TOOLS);
});

test("a tool list that is not frozen all the way down is encoded afresh each time: a change to it shows", () => {
  const shallow = Object.freeze([Object.freeze(tool("a"))]);
  const first = encodeChatBody({ messages, tools: shallow }, "m", true);
  (shallow[0].parameters.properties as Record<string, unknown>).extra = { type: "string" };
  const second = encodeChatBody({ messages, tools: shallow }, "m", true);
  assert.notEqual(first, second);
  assert.equal(second, JSON.stringify(buildChatBody({ messages, tools: shallow }, "m", true)));
  const open = [tool("b")];
  encodeChatBody({ messages, tools: open }, "m", true);
  open.push(tool("c"));
  assert.match(encodeChatBody({ messages, tools: open }, "m", true), /"name":"c"/);
});

test("a request that cannot be encoded is BAD_REQUEST, with or without a frozen tool list", () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  for (const tools of [DEVICE_TOOLS, [tool("x")]]) {
    assert.throws(
      () => encodeChatBody({ messages, tools, jsonSchema: { name: "c", schema: cyclic } }, "m", true),
      (err: unknown) => (err as { code?: string }).code === "BRIDGE_ERR_ENGINE_BAD_REQUEST",
    );
  }
});
