/**
 * The simulator counts the steps that admitted sequences (each pays a prefill) and the sequences admitted, so a
 * benchmark can read how many sequences share one prefill step: a closed loop whose answers all have one length
 * phase-locks into cohorts that are admitted together (issue #5).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { resolveEngineSimOptions, startEngineSimulator } from "../../engine-client/sim/index.ts";
import { PrefixCache } from "../../engine-client/sim/prefix-cache.ts";
import { BatchScheduler } from "../../engine-client/sim/scheduler.ts";
import { waitFor } from "./support.ts";

describe("prefill steps", () => {
  test("sequences admitted in one step count one prefill step; a later arrival pays its own, decode steps none", async () => {
    const scheduler = new BatchScheduler(resolveEngineSimOptions({ timeScale: 0 }), new PrefixCache(0));
    let tokens = 0;
    const submit = (s: number, outputTokens: number) =>
      scheduler.submit({ promptTokens: [s, s + 1], outputTokens, onToken: () => tokens++ });
    try {
      for (let s = 0; s < 3; s++) submit(s * 10, 4);
      await waitFor(() => tokens === 12, "the first cohort's tokens");
      assert.equal(scheduler.steps, 4);
      assert.equal(scheduler.prefillSteps, 1);
      assert.equal(scheduler.admittedSequences, 3);
      submit(100, 3);
      await waitFor(() => tokens === 15, "the late sequence's tokens");
      assert.equal(scheduler.steps, 7);
      assert.equal(scheduler.prefillSteps, 2);
      assert.equal(scheduler.admittedSequences, 4);
    } finally {
      scheduler.close();
    }
  });

  test("stats() and GET /admin/stats report the prefill steps and admitted sequences", async () => {
    const sim = await startEngineSimulator({ timeScale: 0 });
    try {
      const ask = async (question: string) => {
        const res = await fetch(`${sim.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: sim.model, messages: [{ role: "user", content: question }], max_tokens: 3 }),
        });
        assert.equal(res.status, 200);
        await res.text();
      };
      // One after the other: each is admitted in a step of its own.
      await ask("first");
      await ask("second");
      const stats = sim.stats();
      assert.equal(stats.prefillSteps, 2);
      assert.equal(stats.admittedSequences, 2);
      const res = await fetch(`${sim.url}/admin/stats`);
      const body = (await res.json()) as Record<string, unknown>;
      assert.equal(body.prefillSteps, 2);
      assert.equal(body.admittedSequences, 2);
    } finally {
      await sim.close();
    }
  });
});
