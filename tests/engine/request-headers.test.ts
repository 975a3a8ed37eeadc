/** The headers and ids of the client's requests: built once per client bar the request id, which stays unique. */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ChatRequest } from "../../agents/engine.ts";
import { createEngineClient } from "../../engine-client/index.ts";
import { RequestHeaders } from "../../engine-client/request-headers.ts";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import { collect } from "./support.ts";

const ASK: ChatRequest = { messages: [{ role: "user", content: "hi" }] };

test("a request's headers are one flat list; the bearer token only when a key is set", () => {
  assert.deepEqual(new RequestHeaders(undefined).with("r-1"), [
    "content-type",
    "application/json",
    "accept",
    "application/json, text/event-stream",
    "x-request-id",
    "r-1",
  ]);
  const keyed = new RequestHeaders("sk-0123456789").with("r-2");
  assert.deepEqual(keyed.slice(-4), ["x-request-id", "r-2", "authorization", "Bearer sk-0123456789"]);
});

test("request ids are the client's tag, drawn once, plus a sequence number: distinct per request and per client", async () => {
  const sim = await startEngineSimulator({ timeScale: 0 });
  let draws = 0;
  const random = () => {
    draws++;
    return draws === 1 ? 0.25 : 0.75;
  };
  const first = createEngineClient({ urls: [sim.url], model: sim.model, random });
  const second = createEngineClient({ urls: [sim.url], model: sim.model, random });
  try {
    for (let i = 0; i < 3; i++) assert.equal((await collect(first.stream(ASK, { agentId: "dev-1" }))).error, undefined);
    await first.complete(ASK, { agentId: "dev-1" });
    assert.equal((await collect(second.stream(ASK, { agentId: "dev-2" }))).error, undefined);
    assert.equal(draws, 2, "one draw per client, none per request");
    const ids = sim.requests().map((r) => r.requestId);
    const tag = (0.25 * 2 ** 32).toString(36);
    assert.deepEqual(
      ids.slice(0, 4),
      [1, 2, 3, 4].map((n) => `bridge-${tag}-${n}`),
    );
    assert.equal(ids[4], `bridge-${(0.75 * 2 ** 32).toString(36)}-1`);
  } finally {
    await first.close();
    await second.close();
    await sim.close();
  }
});
