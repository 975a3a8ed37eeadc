/**
 * `GET /api/devices/:id/conversation` answers the conversation and the usage as one reading of the agent: a turn that
 * finishes while the route runs is in both or in neither, never counted in the usage and missing from the messages.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { ChatStreamEvent } from "../../agents/engine.ts";
import type { Value } from "../../codecs/frames.ts";
import { AUTH, type ApiFixture, createApiFixture } from "./helpers.ts";

/** An engine that answers every question with one text event, counting one request of 10 + 2 tokens. */
const engine = {
  async *stream(): AsyncIterable<ChatStreamEvent> {
    yield { type: "text", text: "All fine." };
    yield { type: "done", finishReason: "stop", usage: { promptTokens: 10, completionTokens: 2, cachedTokens: 0 } };
  },
};

let f: ApiFixture;
before(async () => {
  f = await createApiFixture({ engine });
});
after(() => f.close());

test("a turn that finishes while the conversation is read is in both the messages and the usage, or in neither", async () => {
  await f.provision("agree-1");
  const dev = await f.device("agree-1");
  const call = f.runtime.call.bind(f.runtime);
  const requests = async () => {
    const result = await call("agree-1", "getUsage", []);
    assert.ok(result.ok);
    return (result.value as { requests: number }).requests;
  };
  let asked = 0;
  /** Asks one more question and waits until its engine request is counted (the turn has finished). */
  const ask = async () => {
    asked++;
    await dev.send({ channel: "reason", frame: { id: `q${asked}`, q: `Question ${asked}?` } });
    const deadline = Date.now() + 5000;
    while ((await requests()) < asked) {
      if (Date.now() > deadline) throw new Error(`turn ${asked} did not finish`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  try {
    await ask();
    // The route's first agent call returns, then a whole turn finishes before it can make another.
    let interleaved = false;
    f.runtime.call = async (agentId: string, method: string, args: Value[]) => {
      const result = await call(agentId, method, args);
      if (!interleaved) {
        interleaved = true;
        await ask();
      }
      return result;
    };
    const res = await f.app.inject({ method: "GET", url: "/api/devices/agree-1/conversation", headers: AUTH });
    assert.ok(interleaved, "the route called the agent");
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json() as { messages: Array<{ role: string }>; usage: { requests: number; promptTokens: number } };
    const answers = body.messages.filter((m) => m.role === "assistant").length;
    assert.equal(body.usage.requests, answers, "every request counted has its answer among the messages");
    assert.equal(body.usage.promptTokens, 10 * answers);
  } finally {
    f.runtime.call = call;
    await dev.close();
  }
});
