/**
 * The `/v1/models` lookup gives each replica its own bound on the client's clock. A replica that does not answer in
 * time is passed over for the next one, and, as a chat deadline that passes before headers does, gets its health
 * probed; it is not counted as failed by the lookup itself.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, test } from "node:test";
import type { ChatRequest } from "../../agents/engine.ts";
import { createEngineClient, rendezvousOrder } from "../../engine-client/index.ts";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import { BridgeError } from "../../errors/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { settledWithin, waitFor } from "./support.ts";

const ASK: ChatRequest = { messages: [{ role: "user", content: "status?" }] };
const LOOKUP_TIMEOUT_MS = 5000;

describe("engine client model lookup", () => {
  test("a stalled replica is passed over after the lookup timeout, on the client's clock, and gets probed", async () => {
    const stalled = await startEngineSimulator({ timeScale: 0, faults: { stall: true } });
    const good = await startEngineSimulator({ timeScale: 0, model: "good-model" });
    const clock = new ManualClock();
    const engine = createEngineClient({ urls: [stalled.url, good.url], clock });
    const stalledStats = () => engine.stats().replicas.find((r) => r.url === stalled.url);
    try {
      const pending = engine.models();
      await waitFor(() => clock.pending === 1, "the lookup's timer on the client's clock");
      await clock.advance(LOOKUP_TIMEOUT_MS);
      assert.deepEqual(await settledWithin(pending, 5000, "models()"), ["good-model"]);
      await waitFor(() => stalled.stats().healthChecks === 1, "the stall probe of the replica that did not answer");
      assert.equal(stalledStats()?.failures, 0, "the lookup's timeout alone is not a failure");
      await clock.advance(2000);
      await waitFor(() => stalledStats()?.failures === 1, "the failed probe to count");
    } finally {
      await engine.close();
      await Promise.all([stalled.close(), good.close()]);
    }
  });

  test("a request naming no model gets the model of the next replica when the first does not list its models", async () => {
    const stalled = await startEngineSimulator({ timeScale: 0, faults: { stall: true } });
    const good = await startEngineSimulator({ timeScale: 0, model: "good-model" });
    const clock = new ManualClock();
    const engine = createEngineClient({ urls: [stalled.url, good.url], clock });
    let agentId = "";
    for (let i = 0; agentId === ""; i++) {
      const order = rendezvousOrder(`agent-${i}`, [{ key: stalled.url }, { key: good.url }]);
      if (order[0].key === good.url) agentId = `agent-${i}`;
    }
    try {
      const pending = engine.complete(ASK, { agentId, timeoutMs: 60_000 });
      // The request's deadline and the lookup's bound.
      await waitFor(() => clock.pending === 2, "the lookup to start");
      await clock.advance(LOOKUP_TIMEOUT_MS);
      const answer = await settledWithin(pending, 5000, "the request");
      assert.ok(answer.text.length > 0);
      assert.equal((good.requests()[0].body as { model?: string }).model, "good-model");
    } finally {
      await engine.close();
      await Promise.all([stalled.close(), good.close()]);
    }
  });

  test("a model list with no model (an engine still loading) is asked again by the next request, not kept", async () => {
    let lookups = 0;
    const named: Array<string | undefined> = [];
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => {
        body += chunk.toString();
      });
      req.on("end", () => {
        res.setHeader("content-type", "application/json");
        if (req.url === "/v1/models") {
          lookups++;
          const data = lookups === 1 ? [] : [{ id: "late-model", object: "model" }];
          res.end(JSON.stringify({ object: "list", data }));
          return;
        }
        named.push((JSON.parse(body) as { model?: string }).model);
        const message = { role: "assistant", content: "ok" };
        const usage = { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 };
        const choices = [{ index: 0, message, finish_reason: "stop" }];
        res.end(JSON.stringify({ id: "c", object: "chat.completion", created: 0, model: "m", choices, usage }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const engine = createEngineClient({ urls: [`http://127.0.0.1:${(server.address() as AddressInfo).port}`] });
    try {
      for (let i = 0; i < 3; i++) await engine.complete(ASK, { agentId: "a", timeoutMs: 10_000 });
      assert.deepEqual(named, [undefined, "late-model", "late-model"]);
      assert.equal(lookups, 2, "looked up until a model was listed, then kept");
    } finally {
      await engine.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test("a caller's signal ends the lookup at once with CANCELLED and probes nothing", async () => {
    const stalled = await startEngineSimulator({ timeScale: 0, faults: { stall: true } });
    const clock = new ManualClock();
    const engine = createEngineClient({ urls: [stalled.url], clock });
    try {
      const cancel = new AbortController();
      const pending = engine.models({ signal: cancel.signal }).then(
        () => assert.fail("a stalled replica cannot have listed its models"),
        (err: unknown) => err,
      );
      await waitFor(() => clock.pending === 1, "the lookup to start");
      cancel.abort();
      const err = await settledWithin(pending, 5000, "models()");
      assert.ok(err instanceof BridgeError);
      assert.equal(err.code, "BRIDGE_ERR_ENGINE_CANCELLED");
      assert.equal(clock.pending, 0, "no probe was armed, and the lookup's timer is gone");
      assert.equal(stalled.stats().healthChecks, 0);
    } finally {
      await engine.close();
      await stalled.close();
    }
  });
});
