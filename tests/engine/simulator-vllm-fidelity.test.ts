/**
 * Differences between the simulator and vLLM's OpenAI-compatible server found in review: requests vLLM refuses that
 * the simulator accepted, requests vLLM serves that crashed the simulator, and answer shapes that differed.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import { postChat, waitFor } from "./support.ts";

const MESSAGES = [{ role: "user", content: "hello" }];

test("a schema whose minItems is huge is answered cut by max_tokens, as vLLM does, instead of a simulator fault", async () => {
  const sim = await startEngineSimulator({ timeScale: 0 });
  try {
    const res = await postChat(sim.url, {
      messages: MESSAGES,
      max_tokens: 10,
      response_format: {
        type: "json_schema",
        json_schema: { name: "list", schema: { type: "array", minItems: 2 ** 32, items: { type: "string" } } },
      },
    });
    assert.equal(res.status, 200, res.text);
    const body = JSON.parse(res.text) as { choices: Array<{ finish_reason: string; message: { content: string } }> };
    assert.equal(body.choices[0].finish_reason, "length");
    assert.ok(body.choices[0].message.content.startsWith('["sim-'), body.choices[0].message.content);
    // Items with no schema are nulls; they count too, so this one ends as well.
    const untyped = await postChat(sim.url, {
      messages: MESSAGES,
      max_tokens: 10,
      response_format: { type: "json_schema", json_schema: { name: "list", schema: { type: "array", minItems: 1e9 } } },
    });
    assert.equal(untyped.status, 200, untyped.text);
  } finally {
    await sim.close();
  }
});
test("stream_options on a request that is not streamed is a 400, as vLLM's request validation makes it", async () => {
  const sim = await startEngineSimulator({ timeScale: 0 });
  try {
    const res = await postChat(sim.url, { messages: MESSAGES, stream: false, stream_options: { include_usage: true } });
    assert.equal(res.status, 400, res.text);
    assert.match(JSON.parse(res.text).error.message, /Stream options can only be defined when `stream=True`/);
    const streamed = await postChat(sim.url, {
      messages: MESSAGES,
      stream: true,
      stream_options: { include_usage: true },
    });
    assert.equal(streamed.status, 200);
  } finally {
    await sim.close();
  }
});

test("a tool_choice that names no offered tool, or comes without tools, is a 400, as vLLM's request validation makes it", async () => {
  const sim = await startEngineSimulator({ timeScale: 0 });
  const tools = [{ type: "function", function: { name: "set_led", parameters: { type: "object" } } }];
  const named = (name: string) => ({ type: "function", function: { name } });
  try {
    const unknown = await postChat(sim.url, { messages: MESSAGES, tools, tool_choice: named("reboot") });
    assert.equal(unknown.status, 400, unknown.text);
    assert.match(JSON.parse(unknown.text).error.message, /does not match any of the specified `tools`/);
    const noTools = await postChat(sim.url, { messages: MESSAGES, tool_choice: "required" });
    assert.equal(noTools.status, 400, noTools.text);
    assert.match(JSON.parse(noTools.text).error.message, /When using `tool_choice`, `tools` must be set/);
    assert.equal((await postChat(sim.url, { messages: MESSAGES, tools, tool_choice: "sometimes" })).status, 400);
    // Accepted as vLLM accepts them: "none" without tools, and a name that is offered.
    assert.equal((await postChat(sim.url, { messages: MESSAGES, tool_choice: "none" })).status, 200);
    const chosen = await postChat(sim.url, { messages: MESSAGES, tools, tool_choice: named("set_led") });
    assert.equal(chosen.status, 200, chosen.text);
  } finally {
    await sim.close();
  }
});

test("a streamed tool call's first fragment carries the name and no arguments key, as vLLM's tool parsers send it", async () => {
  const sim = await startEngineSimulator({ timeScale: 0 });
  try {
    const res = await postChat(sim.url, {
      messages: [{ role: "user", content: "please set_led now" }],
      tools: [{ type: "function", function: { name: "set_led", parameters: { type: "object" } } }],
      stream: true,
    });
    const fragments = res.text
      .split("\n")
      .filter((line) => line.startsWith("data: {"))
      .flatMap((line) => JSON.parse(line.slice(6)).choices)
      .flatMap((choice: { delta: { tool_calls?: unknown[] } }) => choice.delta.tool_calls ?? []);
    const first = fragments[0] as { id: unknown; type: unknown; function: Record<string, unknown> };
    assert.equal(first.type, "function");
    assert.equal(typeof first.id, "string");
    assert.deepEqual(first.function, { name: "set_led" });
    assert.ok(fragments.length > 1, "the arguments follow in later fragments");
  } finally {
    await sim.close();
  }
});

test("a json_schema response_format without a name is a 400 naming the field, as vLLM's pydantic model makes it", async () => {
  const sim = await startEngineSimulator({ timeScale: 0 });
  const schema = { type: "object", properties: { on: { type: "boolean" } } };
  try {
    const unnamed = await postChat(sim.url, {
      messages: MESSAGES,
      response_format: { type: "json_schema", json_schema: { schema } },
    });
    assert.equal(unnamed.status, 400, unnamed.text);
    assert.match(JSON.parse(unnamed.text).error.message, /response_format\.json_schema\.name/);
    const numbered = await postChat(sim.url, {
      messages: MESSAGES,
      response_format: { type: "json_schema", json_schema: { name: 7, schema } },
    });
    assert.equal(numbered.status, 400, numbered.text);
    const named = await postChat(sim.url, {
      messages: MESSAGES,
      response_format: { type: "json_schema", json_schema: { name: "state", schema } },
    });
    assert.equal(named.status, 200, named.text);
  } finally {
    await sim.close();
  }
});

test("a non-streamed plain answer carries tool_calls: [] in its message, as vLLM's ChatMessage defaults it", async () => {
  const sim = await startEngineSimulator({ timeScale: 0 });
  try {
    const res = await postChat(sim.url, { messages: MESSAGES });
    assert.equal(res.status, 200, res.text);
    const message = JSON.parse(res.text).choices[0].message as Record<string, unknown>;
    assert.equal(typeof message.content, "string");
    assert.deepEqual(message.tool_calls, []);
  } finally {
    await sim.close();
  }
});

test("request_success_total counts a tool call as stop and an injected failure as abort: vLLM's finished_reason values", async () => {
  const sim = await startEngineSimulator({ timeScale: 0 });
  try {
    const call = await postChat(sim.url, {
      messages: [{ role: "user", content: "please set_led now" }],
      tools: [{ type: "function", function: { name: "set_led", parameters: { type: "object" } } }],
    });
    assert.equal(JSON.parse(call.text).choices[0].finish_reason, "tool_calls", "the API still says tool_calls");
    sim.setFaults({ errorAfterTokens: { tokens: 1, count: 1 } });
    const failed = await postChat(sim.url, { messages: MESSAGES, stream: true });
    assert.match(failed.text, /injected mid-stream failure/);
    const text = await (await fetch(`${sim.url}/metrics`)).text();
    const counts = new Map(
      [...text.matchAll(/^vllm:request_success_total\{[^}]*finished_reason="([^"]+)"\} (\d+)$/gm)].map((m) => [
        m[1],
        Number(m[2]),
      ]),
    );
    // vLLM's logger labels every reason it has from the start, so the series exist at 0 before any request ends so.
    assert.deepEqual(Object.fromEntries(counts), { stop: 1, length: 0, abort: 1 });
  } finally {
    await sim.close();
  }
});

test("an ignore_eos answer ends with finish_reason length: it stops at max_tokens, never at an end", async () => {
  const sim = await startEngineSimulator({ timeScale: 0 });
  try {
    const res = await postChat(sim.url, { messages: MESSAGES, max_tokens: 5, ignore_eos: true });
    assert.equal(res.status, 200, res.text);
    const body = JSON.parse(res.text) as { choices: Array<{ finish_reason: string }>; usage: Record<string, number> };
    assert.equal(body.usage.completion_tokens, 5);
    assert.equal(body.choices[0].finish_reason, "length");
  } finally {
    await sim.close();
  }
});

test("prompt_tokens_total counts a prompt when prefilled, not when refused after a first-token delay", async () => {
  const sim = await startEngineSimulator({ maxNumSeqs: 1, maxWaiting: 0, faults: { firstTokenDelayMs: 1000 } });
  const holder = new AbortController();
  try {
    // The delayed request passes the queue check on arrival (the engine is idle) and finds the one slot taken after.
    const delayed = postChat(sim.url, { messages: MESSAGES });
    await waitFor(() => sim.requests().length === 1, "the delayed request to arrive");
    sim.clearFaults();
    // A long answer (ignore_eos, real time) takes the slot at once and holds it past the delay.
    const holding = await fetch(`${sim.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ messages: MESSAGES, stream: true, max_tokens: 2000, ignore_eos: true }),
      signal: holder.signal,
    });
    await waitFor(() => sim.stats().generationTokens > 0, "the holding request's first token");
    assert.equal((await delayed).status, 503);
    const text = await (await fetch(`${sim.url}/metrics`)).text();
    const prompt = /^vllm:prompt_tokens_total\{[^}]*\} (\d+)$/m.exec(text)?.[1];
    assert.equal(Number(prompt), sim.requests()[1].promptTokens, "vLLM counts a prompt when it is prefilled");
    holder.abort();
    await holding.body?.cancel().catch(() => {});
  } finally {
    holder.abort();
    await sim.close();
  }
});

test("/metrics has vLLM's vllm:e2e_request_latency_seconds histogram, observed once per finished request", async () => {
  const sim = await startEngineSimulator({ timeScale: 0 });
  try {
    await postChat(sim.url, { messages: MESSAGES });
    const text = await (await fetch(`${sim.url}/metrics`)).text();
    assert.match(text, /^# TYPE vllm:e2e_request_latency_seconds histogram$/m);
    // vLLM's first bucket; the count in it depends on how loaded the machine is.
    assert.match(text, /^vllm:e2e_request_latency_seconds_bucket\{[^}]*le="0\.3"\} [01]$/m);
    assert.match(text, /^vllm:e2e_request_latency_seconds_bucket\{[^}]*le="\+Inf"\} 1$/m);
    assert.match(text, /^vllm:e2e_request_latency_seconds_count\{[^}]*\} 1$/m);
  } finally {
    await sim.close();
  }
});
