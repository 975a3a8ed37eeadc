/**
 * vLLM takes X-Request-Id as its own request id and refuses (400) an id it still runs. An attempt the client gave up
 * on may still be running there (a deadline before the headers, a connection dropped before vLLM noticed), so a
 * retry must not send the same id again; it keeps the first attempt's id as its prefix, so logs still correlate.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ChatRequest } from "../../agents/engine.ts";
import { createEngineClient } from "../../engine-client/index.ts";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import { collect } from "./support.ts";

const ASK: ChatRequest = { messages: [{ role: "user", content: "status?" }] };
const FAST_RETRY = { baseDelayMs: 1, maxDelayMs: 5 };

for (const mode of ["streamed", "non-streamed"] as const) {
  test(`each attempt of a retried ${mode} request carries its own X-Request-Id, the first one's as its prefix`, async () => {
    const sim = await startEngineSimulator({ timeScale: 0, faults: { failRequests: { status: 503, count: 2 } } });
    const engine = createEngineClient({ urls: [sim.url], model: sim.model, retry: FAST_RETRY });
    try {
      if (mode === "streamed") {
        const { error } = await collect(engine.stream(ASK, { agentId: "d" }));
        assert.equal(error, undefined);
      } else {
        await engine.complete(ASK, { agentId: "d" });
      }
      const ids = sim.requests().map((r) => r.requestId);
      assert.equal(ids.length, 3);
      const [first, ...retries] = ids;
      assert.ok(first !== undefined && first.length > 0);
      assert.equal(new Set(ids).size, 3, `ids repeat: ${ids.join(", ")}`);
      for (const id of retries) assert.ok(id?.startsWith(`${first}-`), `${id} does not start with ${first}-`);
    } finally {
      await engine.close();
      await sim.close();
    }
  });
}
