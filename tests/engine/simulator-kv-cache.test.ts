/**
 * The simulator's KV cache: a capacity in 16-token blocks, the blocks its running sequences hold (full prompt blocks
 * shared by sequences with the same prefix, the rest their own), admission that waits for room as vLLM's scheduler
 * does, and vLLM's usage gauge under both its names (`vllm:kv_cache_usage_perc`, and the deprecated
 * `vllm:gpu_cache_usage_perc`).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { runEngineSimCli } from "../../engine-client/sim/cli.ts";
import { resolveEngineSimOptions, startEngineSimulator } from "../../engine-client/sim/index.ts";
import { PrefixCache } from "../../engine-client/sim/prefix-cache.ts";
import { BatchScheduler } from "../../engine-client/sim/scheduler.ts";
import { waitFor } from "./support.ts";

/** `length` prompt tokens, distinct per `seed`. */
function prompt(seed: number, length: number): number[] {
  return Array.from({ length }, (_, i) => seed * 1000 + i);
}

function scheduler(kvCacheBlocks: number): BatchScheduler {
  return new BatchScheduler(
    resolveEngineSimOptions({ timeScale: 0, kvCacheBlocks, maxModelLen: 160 }),
    new PrefixCache(0),
  );
}

/** The value of `name`'s sample in Prometheus text. */
function gauge(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`));
  assert.ok(line, `${name} is exported`);
  return Number(line.split(" ").at(-1));
}

describe("KV cache", () => {
  test("a sequence holds its prompt's blocks and one more block per 16 tokens it generates", async () => {
    const engine = scheduler(10);
    const usage: number[] = [];
    try {
      let done = false;
      // 32 prompt tokens (2 blocks) and 40 to generate: 33 tokens fill 3 blocks, 49 fill 4, 65 fill 5.
      engine.submit({
        promptTokens: prompt(1, 32),
        outputTokens: 40,
        onToken: (index) => {
          usage[index] = engine.kvCacheUsage;
          if (index === 39) done = true;
        },
      });
      await waitFor(() => done, "the sequence's tokens");
      assert.deepEqual([usage[0], usage[15], usage[16], usage[32], usage[39]], [0.3, 0.3, 0.4, 0.5, 0.5]);
      await waitFor(() => engine.running === 0, "the finished sequence to leave");
      assert.equal(engine.kvCacheUsage, 0, "a finished sequence frees its blocks");
    } finally {
      engine.close();
    }
  });

  test("a waiting sequence is admitted only when its prompt and output fit in the blocks left", async () => {
    // Each needs 4 prompt blocks and 1 for its output: two fit in 10 blocks, the third waits for one to finish.
    const engine = scheduler(10);
    const finished: number[] = [];
    let thirdStartedAfter: number[] | undefined;
    let waitingAtFirstToken: number | undefined;
    try {
      for (const seed of [1, 2, 3]) {
        engine.submit({
          promptTokens: prompt(seed, 64),
          outputTokens: 8,
          onToken: (index) => {
            if (seed === 1 && index === 0) waitingAtFirstToken = engine.waiting;
            if (seed === 3 && index === 0) thirdStartedAfter = [...finished];
            if (index === 7) finished.push(seed);
          },
        });
      }
      await waitFor(() => finished.length === 3, "every sequence's tokens");
      assert.equal(waitingAtFirstToken, 1, "the third waited while the first two ran");
      assert.deepEqual(thirdStartedAfter, [1, 2]);
    } finally {
      engine.close();
    }
  });

  test("sequences with the same prompt share its full blocks, so more of them fit", async () => {
    // Shared: 4 prompt blocks once, plus 1 of its own each: three take 7 of 10 blocks and run together.
    const engine = scheduler(10);
    let tokens = 0;
    try {
      for (let i = 0; i < 3; i++)
        engine.submit({ promptTokens: prompt(7, 64), outputTokens: 4, onToken: () => tokens++ });
      await waitFor(() => tokens === 12, "every sequence's tokens");
      assert.equal(engine.prefillSteps, 1, "one cohort");
      assert.equal(engine.admittedSequences, 3);
    } finally {
      engine.close();
    }
  });

  test("a lone request takes the same steps and modelled time whatever the capacity", async () => {
    const modelled: number[] = [];
    for (const kvCacheBlocks of [512, undefined]) {
      const sim = await startEngineSimulator({ timeScale: 0, kvCacheBlocks });
      try {
        const res = await fetch(`${sim.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            model: sim.model,
            messages: [{ role: "user", content: "x".repeat(20_000) }],
            max_tokens: 2000,
            ignore_eos: true,
          }),
        });
        assert.equal(res.status, 200);
        await res.text();
        modelled.push(sim.stats().steps, sim.stats().modelledMs);
      } finally {
        await sim.close();
      }
    }
    assert.deepEqual(modelled.slice(0, 2), modelled.slice(2));
  });

  test("/metrics exports the usage under vLLM's current and deprecated names, and stats() has it", async () => {
    const sim = await startEngineSimulator({ timeScale: 1 });
    try {
      const idle = await (await fetch(`${sim.url}/metrics`)).text();
      for (const name of ["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"]) {
        assert.match(idle, new RegExp(`# TYPE ${name} gauge`));
        assert.equal(gauge(idle, name), 0);
      }
      assert.equal(gauge(idle, "vllm:num_requests_running"), 0);
      assert.equal(gauge(idle, "vllm:num_requests_waiting"), 0);
      const abort = new AbortController();
      const res = await fetch(`${sim.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: sim.model,
          messages: [{ role: "user", content: "x".repeat(4000) }],
          max_tokens: 1000,
          ignore_eos: true,
          stream: true,
        }),
        signal: abort.signal,
      });
      const reader = res.body!.getReader();
      await reader.read();
      const busy = await (await fetch(`${sim.url}/metrics`)).text();
      const usage = gauge(busy, "vllm:kv_cache_usage_perc");
      assert.ok(usage > 0 && usage < 0.01, `one ~1000-token sequence in 55000 blocks: ${usage}`);
      assert.equal(gauge(busy, "vllm:gpu_cache_usage_perc"), usage);
      assert.equal(gauge(busy, "vllm:num_requests_running"), 1);
      const stats = sim.stats();
      assert.ok(stats.kvCacheBlocks > 0);
      assert.equal(stats.kvCacheUsage, stats.kvCacheBlocks / 55_000);
      abort.abort();
      await reader.cancel().catch(() => {});
      await waitFor(() => sim.stats().kvCacheBlocks === 0, "the aborted sequence to free its blocks");
    } finally {
      await sim.close();
    }
  });

  test("a capacity that cannot hold maxModelLen tokens is refused, as vLLM refuses to start", async () => {
    assert.throws(
      () => resolveEngineSimOptions({ maxModelLen: 8192, kvCacheBlocks: 511 }),
      (err: Error & { details?: { field?: string } }) => err.details?.field === "engineSim.kvCacheBlocks",
    );
    assert.equal(resolveEngineSimOptions({ maxModelLen: 8192, kvCacheBlocks: 512 }).kvCacheBlocks, 512);
    assert.equal(resolveEngineSimOptions({}).kvCacheBlocks, 55_000);
    await assert.rejects(
      runEngineSimCli(["--port", "0", "--kv-cache-blocks", "10"], { log: () => {}, handleSignals: false }),
      (err: Error & { details?: { field?: string } }) => err.details?.field === "--kv-cache-blocks",
    );
    const sim = await runEngineSimCli(["--port", "0", "--kv-cache-blocks", "600"], {
      log: () => {},
      handleSignals: false,
    });
    await sim.close();
  });
});
