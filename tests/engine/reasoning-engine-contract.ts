/**
 * The contract every `ReasoningEngine` keeps (agents/engine.ts), as one suite that any implementation runs:
 * the engine client against each server dialect here, and any fake engine another area writes for its tests.
 * The engine must answer text for a plain question and call the tool named in the user's message.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { ChatStreamEvent, ReasoningEngine } from "../../agents/engine.ts";
import { BridgeError } from "../../errors/index.ts";

export interface ContractSubject {
  engine: ReasoningEngine;
  close(): Promise<void>;
}

const TOOL = {
  name: "set_led",
  description: "Switch the status LED",
  parameters: { type: "object", properties: { on: { type: "boolean" } }, required: ["on"] },
};

async function drain(stream: AsyncIterable<ChatStreamEvent>): Promise<ChatStreamEvent[]> {
  const events: ChatStreamEvent[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

/** Registers the contract tests for one implementation. */
export function describeReasoningEngineContract(name: string, setup: () => Promise<ContractSubject>): void {
  describe(`ReasoningEngine contract: ${name}`, () => {
    let subject: ContractSubject;
    before(async () => {
      subject = await setup();
    });
    after(async () => {
      await subject.close();
    });

    test("a plain question yields non-empty text events, then exactly one done, last, with whole-number usage", async () => {
      const events = await drain(
        subject.engine.stream({ messages: [{ role: "user", content: "How are you?" }] }, { agentId: "c-1" }),
      );
      const done = events.filter((e) => e.type === "done");
      assert.equal(done.length, 1);
      assert.equal(events.at(-1)?.type, "done");
      for (const event of events.slice(0, -1)) {
        assert.equal(event.type, "text");
        assert.ok(event.type === "text" && event.text.length > 0);
      }
      const last = events.at(-1)!;
      assert.ok(last.type === "done");
      for (const n of [last.usage.promptTokens, last.usage.completionTokens, last.usage.cachedTokens]) {
        assert.ok(Number.isInteger(n) && n >= 0);
      }
      assert.ok(last.usage.cachedTokens <= last.usage.promptTokens);
      assert.ok(last.finishReason.length > 0);
    });

    test("streamBatches, where offered, hands over the same events as stream, in order, in non-empty batches", async (t) => {
      const engine = subject.engine;
      if (engine.streamBatches === undefined) {
        t.skip("this engine offers no streamBatches");
        return;
      }
      const request = { messages: [{ role: "user" as const, content: "Describe the weather twice." }], maxTokens: 24 };
      const streamed = await drain(engine.stream(request, { agentId: "c-batches" }));
      const batches: ChatStreamEvent[][] = [];
      await engine.streamBatches(request, { agentId: "c-batches" }, (events) => {
        batches.push([...events]);
      });
      assert.ok(batches.every((b) => b.length > 0));
      const batched = batches.flat();
      assert.equal(batched.at(-1)?.type, "done");
      assert.equal(batched.filter((e) => e.type === "done").length, 1);
      const text = (events: ChatStreamEvent[]) => events.map((e) => (e.type === "text" ? e.text : "")).join("");
      assert.equal(text(batched), text(streamed), "the same answer, in the same order");
    });

    test("a tool call arrives whole: an id, the tool's name and arguments that parse as JSON", async () => {
      const events = await drain(
        subject.engine.stream(
          { messages: [{ role: "user", content: 'turn it on: set_led {"on": true}' }], tools: [TOOL] },
          { agentId: "c-2" },
        ),
      );
      const calls = events.filter((e) => e.type === "tool-call");
      assert.equal(calls.length, 1);
      assert.ok(calls[0].type === "tool-call");
      assert.ok(calls[0].call.id.length > 0);
      assert.equal(calls[0].call.name, "set_led");
      assert.deepEqual(JSON.parse(calls[0].call.arguments), { on: true });
      assert.equal(events.at(-1)?.type, "done");
    });

    test("an already-aborted signal fails with CANCELLED before any event", async () => {
      const controller = new AbortController();
      controller.abort();
      const seen: ChatStreamEvent[] = [];
      await assert.rejects(
        async () => {
          for await (const event of subject.engine.stream(
            { messages: [{ role: "user", content: "x" }] },
            { agentId: "c-3", signal: controller.signal },
          )) {
            seen.push(event);
          }
        },
        (err: unknown) => err instanceof BridgeError && err.code === "BRIDGE_ERR_ENGINE_CANCELLED",
      );
      assert.deepEqual(seen, []);
    });

    test("a passed deadline fails with TIMEOUT", async () => {
      await assert.rejects(
        drain(
          subject.engine.stream(
            { messages: [{ role: "user", content: "x" }] },
            { agentId: "c-4", deadline: Date.now() - 1 },
          ),
        ),
        (err: unknown) => err instanceof BridgeError && err.code === "BRIDGE_ERR_ENGINE_TIMEOUT",
      );
    });

    test("a consumer may stop early, and the engine serves the next request normally", async () => {
      for await (const _ of subject.engine.stream(
        { messages: [{ role: "user", content: "long story" }] },
        { agentId: "c-5" },
      )) {
        break;
      }
      const events = await drain(
        subject.engine.stream({ messages: [{ role: "user", content: "again" }] }, { agentId: "c-5" }),
      );
      assert.equal(events.at(-1)?.type, "done");
    });
  });
}
