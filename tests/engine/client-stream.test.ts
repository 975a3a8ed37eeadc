/** The engine client against the simulator over loopback: the happy paths. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { ChatRequest } from "../../agents/engine.ts";
import { type EngineClient, createEngineClient } from "../../engine-client/index.ts";
import { type EngineSimulator, startEngineSimulator } from "../../engine-client/sim/index.ts";
import { collect, waitFor } from "./support.ts";

const SET_LED = {
  name: "set_led",
  description: "Switch the LED",
  parameters: { type: "object", properties: { on: { type: "boolean" } }, required: ["on"] },
};

describe("engine client against the simulator", () => {
  let sim: EngineSimulator;
  let engine: EngineClient;
  const events: string[] = [];

  before(async () => {
    sim = await startEngineSimulator({ timeScale: 0 });
    engine = createEngineClient({
      urls: [sim.url],
      observer: {
        onDispatch: (e) => events.push(`dispatch ${e.agentId} attempt ${e.attempt}`),
        onFirstToken: (e) => events.push(`first-token ${e.agentId}`),
        onComplete: (e) => events.push(`complete ${e.agentId} ${e.finishReason}`),
      },
    });
  });
  after(async () => {
    await engine.close();
    await sim.close();
  });

  test("a streamed answer yields text deltas then exactly one done with usage", async () => {
    const {
      events: out,
      text,
      error,
    } = await collect(
      engine.stream({ messages: [{ role: "user", content: "How is the pump?" }] }, { agentId: "dev-1" }),
    );
    assert.equal(error, undefined);
    assert.ok(text.length > 0);
    const done = out.filter((e) => e.type === "done");
    assert.equal(done.length, 1);
    assert.equal(out[out.length - 1].type, "done");
    const last = out[out.length - 1];
    assert.ok(last.type === "done" && last.usage.promptTokens > 0);
    assert.ok(last.type === "done" && last.usage.completionTokens === out.length - 1);
    const record = sim.requests().at(-1)!;
    assert.equal(record.stream, true);
    assert.deepEqual((record.body as { stream_options: unknown }).stream_options, { include_usage: true });
    assert.equal((record.body as { model: unknown }).model, sim.model, "the model is looked up in /v1/models");
  });

  test("with the model known and a slot free, a streamed request starts before the caller's turn ends", async () => {
    // An agent starts its engine round inside an event (an eager task): nothing in the call may wait, so that the
    // request is handed to undici, and written on the loop's next check phase, while the event commits.
    const named = createEngineClient({ urls: [sim.url], model: sim.model });
    try {
      const call = named.streamBatches(
        { messages: [{ role: "user", content: "at once" }] },
        { agentId: "a" },
        () => {},
      );
      assert.equal(named.stats().replicas[0].attempts, 1, "the configured model needs no wait");
      assert.equal(named.stats().replicas[0].inFlight, 1);
      await call;
    } finally {
      await named.close();
    }
    // This suite's client names no model: its first request looks the model up, every later one starts at once.
    await collect(engine.stream({ messages: [{ role: "user", content: "look the model up" }] }, { agentId: "b" }));
    const attempts = engine.stats().replicas[0].attempts;
    const call = engine.streamBatches({ messages: [{ role: "user", content: "at once" }] }, { agentId: "b" }, () => {});
    assert.equal(engine.stats().replicas[0].attempts, attempts + 1, "the looked-up model is kept");
    await call;
  });

  test("the same prompt gets the same text streamed and non-streamed", async () => {
    const request: ChatRequest = { messages: [{ role: "user", content: "Summarise the day" }], maxTokens: 40 };
    const streamed = await collect(engine.stream(request, { agentId: "dev-2" }));
    const whole = await engine.complete(request, { agentId: "dev-2" });
    assert.equal(whole.text, streamed.text);
    assert.equal(whole.model, sim.model);
    const done = streamed.events.at(-1)!;
    assert.ok(done.type === "done");
    assert.equal(whole.usage.completionTokens, done.usage.completionTokens);
    assert.equal(sim.requests().at(-1)!.stream, false);
  });

  test("max tokens cuts the answer and the finish reason says length", async () => {
    const whole = await engine.complete(
      { messages: [{ role: "user", content: "Tell me everything" }], maxTokens: 3 },
      { agentId: "dev-3" },
    );
    assert.equal(whole.finishReason, "length");
    assert.equal(whole.usage.completionTokens, 3);
  });

  test("consecutive requests sharing a long prefix report cached prompt tokens", async () => {
    const system = `You are the agent of a greenhouse controller. ${"Keep answers short and factual. ".repeat(20)}`;
    const ask = (question: string) =>
      collect(
        engine.stream(
          {
            messages: [
              { role: "system", content: system },
              { role: "user", content: question },
            ],
          },
          { agentId: "dev-cache" },
        ),
      );
    const first = (await ask("What is the humidity?")).events.at(-1)!;
    const second = (await ask("And the temperature?")).events.at(-1)!;
    assert.ok(first.type === "done" && second.type === "done");
    assert.equal(first.usage.cachedTokens, 0);
    assert.ok(second.usage.cachedTokens >= 160, `cached ${second.usage.cachedTokens}`);
    assert.equal(second.usage.cachedTokens % 16, 0, "whole 16-token blocks");
    assert.ok(second.usage.cachedTokens < second.usage.promptTokens);
    assert.ok(engine.stats().cachedTokens >= second.usage.cachedTokens);
  });

  test("a tool call is streamed as fragments and reaches the caller assembled", async () => {
    const { events: out } = await collect(
      engine.stream(
        { messages: [{ role: "user", content: 'Please set_led {"on": false}' }], tools: [SET_LED] },
        { agentId: "dev-4" },
      ),
    );
    const calls = out.filter((e) => e.type === "tool-call");
    assert.equal(calls.length, 1);
    assert.ok(calls[0].type === "tool-call");
    assert.equal(calls[0].call.name, "set_led");
    assert.deepEqual(JSON.parse(calls[0].call.arguments), { on: false });
    assert.ok(calls[0].call.id.length > 0);
    const done = out.at(-1)!;
    assert.ok(done.type === "done" && done.finishReason === "tool_calls");
  });

  test("a tool call comes back from a non-streamed request too, and a tool result gets a text answer", async () => {
    const first = await engine.complete(
      { messages: [{ role: "user", content: "use set_led" }], tools: [SET_LED] },
      { agentId: "dev-5" },
    );
    assert.equal(first.finishReason, "tool_calls");
    assert.equal(first.toolCalls[0].name, "set_led");
    assert.equal(typeof JSON.parse(first.toolCalls[0].arguments).on, "boolean");
    const second = await engine.complete(
      {
        messages: [
          { role: "user", content: "use set_led" },
          { role: "assistant", content: null, toolCalls: first.toolCalls },
          { role: "tool", toolCallId: first.toolCalls[0].id, content: "done" },
        ],
        tools: [SET_LED],
      },
      { agentId: "dev-5" },
    );
    assert.equal(second.toolCalls.length, 0);
    assert.ok(second.text.length > 0);
  });

  test("json_schema is passed through as response_format and the answer parses against it", async () => {
    const schema = {
      type: "object",
      properties: {
        action: { type: "string", enum: ["open", "close"] },
        minutes: { type: "integer", minimum: 1, maximum: 30 },
      },
      required: ["action", "minutes"],
    };
    const { text } = await collect(
      engine.stream(
        { messages: [{ role: "user", content: "Decide about the valve" }], jsonSchema: { name: "valve", schema } },
        { agentId: "dev-6" },
      ),
    );
    const body = sim.requests().at(-1)!.body as { response_format: unknown };
    assert.deepEqual(body.response_format, {
      type: "json_schema",
      json_schema: { name: "valve", schema, strict: true },
    });
    const parsed = JSON.parse(text);
    assert.equal(parsed.action, "open");
    assert.ok(Number.isInteger(parsed.minutes) && parsed.minutes >= 1 && parsed.minutes <= 30);
  });

  test("an unknown model is a bad request and is not retried", async () => {
    const before = sim.requests().length;
    const { error } = await collect(
      engine.stream({ messages: [{ role: "user", content: "x" }], model: "nope" }, { agentId: "dev-7" }),
    );
    assert.equal(error?.code, "BRIDGE_ERR_ENGINE_BAD_REQUEST");
    assert.equal(error?.details.status, 404);
    assert.match(error?.message ?? "", /does not exist/);
    assert.equal(sim.requests().length, before + 1);
  });

  test("models and health report the simulator", async () => {
    assert.deepEqual(await engine.models(), [sim.model]);
    const health = await engine.health();
    assert.equal(health.status, "ok");
    assert.equal(health.replicas[0].healthy, true);
  });

  test("the observer sees dispatch, first token and completion for each request", async () => {
    await collect(engine.stream({ messages: [{ role: "user", content: "ping" }] }, { agentId: "dev-obs" }));
    await waitFor(
      () => events.includes("complete dev-obs stop") || events.includes("complete dev-obs length"),
      "completion",
    );
    assert.deepEqual(events.filter((e) => e.includes("dev-obs")).slice(0, 2), [
      "dispatch dev-obs attempt 1",
      "first-token dev-obs",
    ]);
  });
});

describe("engine client against other server dialects", () => {
  test("CRLF line endings and flat vLLM error objects are understood", async () => {
    const sim = await startEngineSimulator({ timeScale: 0, sseLineEnding: "\r\n", errorFormat: "flat" });
    const engine = createEngineClient({ urls: [`${sim.url}/v1`], model: sim.model });
    try {
      const ok = await collect(engine.stream({ messages: [{ role: "user", content: "hello" }] }, { agentId: "d" }));
      assert.equal(ok.error, undefined);
      assert.ok(ok.text.length > 0);
      sim.setFaults({ errorAfterTokens: { tokens: 2, count: 1 } });
      const broken = await collect(engine.stream({ messages: [{ role: "user", content: "hello" }] }, { agentId: "d" }));
      assert.equal(broken.error?.code, "BRIDGE_ERR_ENGINE_STREAM_BROKEN");
      assert.match(broken.error?.message ?? "", /injected mid-stream failure/);
    } finally {
      await engine.close();
      await sim.close();
    }
  });
});
