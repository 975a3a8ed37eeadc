/** The engine simulator on its own: step model, batching, prefix cache, generator rules, HTTP surface, faults, CLI. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { BridgeError } from "../../errors/index.ts";
import {
  ENGINE_SIM_DEFAULTS,
  decodeStepMs,
  prefillMs,
  resolveEngineSimOptions,
  runEngineSimCli,
  startEngineSimulator,
} from "../../engine-client/sim/index.ts";
import { type GenerationInput, planGeneration } from "../../engine-client/sim/generator.ts";
import { PrefixCache } from "../../engine-client/sim/prefix-cache.ts";
import { BatchScheduler, type Sequence } from "../../engine-client/sim/scheduler.ts";
import { waitFor } from "./support.ts";

const model = ENGINE_SIM_DEFAULTS.stepModel;

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

describe("step model", () => {
  test("decode and prefill times follow the H200 formula", () => {
    assert.equal(decodeStepMs(model, []), 4.96);
    // 4.96 + 2 x (0.011 + 0.039 x 1000/1000)
    assert.ok(Math.abs(decodeStepMs(model, [1000, 1000]) - 5.06) < 1e-9);
    assert.equal(prefillMs(model, 10), 4.9);
    assert.ok(Math.abs(prefillMs(model, 1000) - 23) < 1e-9);
  });

  test("sequences submitted together decode in one batch: one step per token, not per token per sequence", async () => {
    const options = resolveEngineSimOptions({ timeScale: 0 });
    const scheduler = new BatchScheduler(options, new PrefixCache(0));
    const tokens: number[] = [];
    const prompt = Array.from({ length: 100 }, (_, i) => i);
    for (let s = 0; s < 8; s++) {
      const sequence: Sequence = { promptTokens: prompt, outputTokens: 20, onToken: () => tokens.push(s) };
      scheduler.submit(sequence);
    }
    await waitFor(() => tokens.length === 160, "all tokens");
    assert.equal(scheduler.steps, 20);
    let expected = prefillMs(model, 800);
    for (let step = 1; step < 20; step++) expected += decodeStepMs(model, Array(8).fill(100 + step));
    assert.ok(Math.abs(scheduler.modelledMs - expected) < 1e-6, `${scheduler.modelledMs} vs ${expected}`);
    scheduler.close();
  });
});

describe("waiting queue", () => {
  test("maxWaiting counts the requests beyond the free batch slots: a burst the batch can take is never refused", async () => {
    const options = resolveEngineSimOptions({ timeScale: 1, maxNumSeqs: 4, maxWaiting: 2 });
    const scheduler = new BatchScheduler(options, new PrefixCache(0));
    const started: number[] = [];
    const submit = (s: number) =>
      scheduler.submit({ promptTokens: [s], outputTokens: 100_000, onToken: (i) => i === 0 && started.push(s) });
    try {
      // Arriving together at an idle engine: four take the free slots at the next step, two wait, the seventh is
      // refused (vLLM would schedule the four at once; they never wait for a slot).
      assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map(submit), [true, true, true, true, true, true, false]);
      await waitFor(() => started.length === 4, "the batch to fill");
      assert.equal(scheduler.waiting, 2);
      assert.equal(submit(7), false, "with the batch full, the two waiting are the bound");
    } finally {
      scheduler.close();
    }
  });

  test("a sequence being prefilled holds its slot: it is running, and the queue bound counts it", async () => {
    // A long step (timeScale 100: the 4.9 ms prefill lasts 490 ms) so the check runs while it is in flight.
    const options = resolveEngineSimOptions({ timeScale: 100, maxNumSeqs: 1, maxWaiting: 0 });
    const scheduler = new BatchScheduler(options, new PrefixCache(0));
    const submit = (s: number) => scheduler.submit({ promptTokens: [s], outputTokens: 10, onToken: () => {} });
    try {
      assert.equal(submit(0), true);
      await waitFor(() => scheduler.steps === 1, "the first step to start");
      assert.equal(scheduler.running, 1, "the sequence being prefilled is running, as vLLM counts it");
      assert.equal(submit(1), false, "the only slot is taken and maxWaiting is 0");
    } finally {
      scheduler.close();
    }
  });
});

describe("prefill budget", () => {
  test("a request that waits for a later step's prefill budget is counted once in the prefix-cache queries", async () => {
    const options = resolveEngineSimOptions({ timeScale: 0, maxNumBatchedTokens: 100 });
    const cache = new PrefixCache(100);
    const scheduler = new BatchScheduler(options, cache);
    const firstTokens: number[] = [];
    for (let s = 0; s < 3; s++) {
      const prompt = Array.from({ length: 80 }, (_, i) => s * 1000 + i);
      scheduler.submit({
        promptTokens: prompt,
        outputTokens: 2,
        onToken: (i) => i === 0 && firstTokens.push(scheduler.steps),
      });
    }
    await waitFor(() => firstTokens.length === 3, "all first tokens");
    assert.deepEqual(firstTokens, [1, 2, 3], "one 80-token prefill per step under a 100-token budget");
    assert.equal(cache.queriedTokens, 240);
    scheduler.close();
  });
});

describe("prefix cache", () => {
  test("blocks match from the start until the first difference, and one prompt token is always computed", () => {
    const cache = new PrefixCache(100);
    const a = Array.from({ length: 64 }, (_, i) => i);
    assert.equal(cache.lookup(a), 0);
    cache.insert(a);
    assert.equal(cache.lookup(a), 48, "a fully cached prompt recomputes its last block");
    const b = [...a.slice(0, 40), 999, ...a.slice(41)];
    assert.equal(cache.lookup(b), 32, "blocks after the first difference do not match");
    const c = [7, ...a.slice(1)];
    assert.equal(cache.lookup(c), 0, "a block matches only after the same prefix");
  });

  test("capacity is bounded and the least recently used blocks go first", () => {
    const cache = new PrefixCache(4);
    const a = Array.from({ length: 33 }, (_, i) => i);
    const b = Array.from({ length: 33 }, (_, i) => 1000 + i);
    const c = Array.from({ length: 33 }, (_, i) => 2000 + i);
    cache.insert(a);
    cache.insert(b);
    assert.equal(cache.lookup(a), 32, "touching a makes b the oldest");
    cache.insert(c);
    assert.equal(cache.size, 4);
    assert.equal(cache.lookup(b), 0);
    assert.equal(cache.lookup(a), 32);
  });

  test("under pressure a prompt loses its last blocks first, as vLLM frees them, so its prefix still matches", () => {
    const cache = new PrefixCache(4);
    const a = Array.from({ length: 65 }, (_, i) => i);
    const b = Array.from({ length: 33 }, (_, i) => 1000 + i);
    cache.insert(a);
    cache.insert(b);
    // Evicting a's first block would strand its three others: held in the cache, never matched again.
    assert.equal(cache.lookup(a), 32, "a keeps its first two blocks");
    assert.equal(cache.lookup(b), 32);
    const long = Array.from({ length: 16 * 6 + 1 }, (_, i) => 5000 + i);
    cache.insert(long);
    assert.equal(cache.lookup(long), 64, "a prompt longer than the cache keeps its head, not its tail");
  });
});

describe("generator", () => {
  const base: GenerationInput = {
    prompt: "p",
    model: "m",
    lastRole: "user",
    lastContent: "",
    tools: [{ name: "set_led", parameters: { type: "object", properties: { on: { type: "boolean" } } } }],
    toolChoice: undefined,
    jsonSchema: undefined,
    maxTokens: 100,
    ignoreEos: false,
    minOutputTokens: 8,
    maxOutputTokens: 64,
  };
  const kind = (overrides: Partial<GenerationInput>) => planGeneration({ ...base, ...overrides }).finishReason;

  test("a tool is called when the user names it as a word, or when tool_choice demands it", () => {
    assert.equal(kind({ lastContent: "please set_led now" }), "tool_calls");
    assert.equal(kind({ lastContent: "please set_led_x now" }), "stop");
    assert.equal(kind({ lastContent: "set_led", toolChoice: "none" }), "stop");
    assert.equal(kind({ lastContent: "anything", toolChoice: "required" }), "tool_calls");
    assert.equal(
      kind({ lastContent: "x", toolChoice: { type: "function", function: { name: "set_led" } } }),
      "tool_calls",
    );
    assert.equal(kind({ lastRole: "tool", lastContent: "set_led" }), "stop");
  });

  test("the same prompt always gives the same tokens, and a different prompt different ones", () => {
    const one = planGeneration({ ...base, prompt: "hello" });
    assert.deepEqual(planGeneration({ ...base, prompt: "hello" }), one);
    assert.notDeepEqual(planGeneration({ ...base, prompt: "hello!" }), one);
    assert.ok(one.pieces.length >= 8 && one.pieces.length <= 64);
    assert.equal(planGeneration({ ...base, ignoreEos: true, maxTokens: 90 }).pieces.length, 90);
  });
});

describe("simulator HTTP surface", () => {
  test("answers are the same whether a request runs alone or batched with others", async () => {
    const sim = await startEngineSimulator({ timeScale: 0 });
    try {
      const body = { messages: [{ role: "user", content: "same question" }], max_tokens: 30 };
      const alone = JSON.parse((await post(`${sim.url}/v1/chat/completions`, body)).text);
      const batch = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          post(
            `${sim.url}/v1/chat/completions`,
            i === 3 ? body : { messages: [{ role: "user", content: `other ${i}` }] },
          ),
        ),
      );
      assert.equal(JSON.parse(batch[3].text).choices[0].message.content, alone.choices[0].message.content);
    } finally {
      await sim.close();
    }
  });

  test("/metrics exposes vLLM's metric names with live values", async () => {
    const sim = await startEngineSimulator({ timeScale: 0 });
    try {
      const system = "x".repeat(400);
      for (const q of ["a", "b"]) {
        await post(`${sim.url}/v1/chat/completions`, {
          messages: [
            { role: "system", content: system },
            { role: "user", content: q },
          ],
        });
      }
      const text = await (await fetch(`${sim.url}/metrics`)).text();
      for (const name of [
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:prompt_tokens_total",
        "vllm:generation_tokens_total",
        "vllm:time_to_first_token_seconds_bucket",
        "vllm:prefix_cache_queries_total",
        "vllm:prefix_cache_hits_total",
        "vllm:gpu_prefix_cache_hit_rate",
      ]) {
        assert.match(text, new RegExp(`^${name}\\{`, "m"), name);
      }
      const hits = Number(/^vllm:prefix_cache_hits_total\{[^}]*\} (\d+)/m.exec(text)?.[1]);
      assert.ok(hits >= 96, `hits ${hits}`);
      assert.match(text, /^vllm:time_to_first_token_seconds_count\{[^}]*\} 2$/m);
    } finally {
      await sim.close();
    }
  });

  test("bad requests get vLLM-shaped 400s, an unknown route 404, and a missing API key 401", async () => {
    const sim = await startEngineSimulator({ timeScale: 0, apiKey: "k", maxModelLen: 64 });
    const auth = { authorization: "Bearer k" };
    try {
      const noMessages = await post(`${sim.url}/v1/chat/completions`, { messages: [] }, auth);
      assert.equal(noMessages.status, 400);
      assert.equal(JSON.parse(noMessages.text).error.type, "BadRequestError");
      const tooLong = await post(
        `${sim.url}/v1/chat/completions`,
        { messages: [{ role: "user", content: "x".repeat(400) }] },
        auth,
      );
      assert.equal(tooLong.status, 400);
      assert.match(JSON.parse(tooLong.text).error.message, /maximum context length is 64 tokens/);
      assert.equal((await post(`${sim.url}/v1/nothing`, {}, auth)).status, 404);
      assert.equal(
        (await post(`${sim.url}/v1/chat/completions`, { messages: [{ role: "user", content: "x" }] })).status,
        401,
      );
      assert.equal((await fetch(`${sim.url}/health`)).status, 200, "health needs no key, as in vLLM");
    } finally {
      await sim.close();
    }
  });

  test("faults are set and cleared over the admin endpoint, which refuses unknown ones", async () => {
    const sim = await startEngineSimulator({ timeScale: 0 });
    try {
      const set = await post(`${sim.url}/admin/faults`, {
        failRequests: { status: 503, count: 1, retryAfterSeconds: 3 },
      });
      assert.equal(set.status, 200);
      const failed = await post(`${sim.url}/v1/chat/completions`, { messages: [{ role: "user", content: "x" }] });
      assert.equal(failed.status, 503);
      assert.equal(failed.headers.get("retry-after"), "3");
      const passed = await post(`${sim.url}/v1/chat/completions`, { messages: [{ role: "user", content: "x" }] });
      assert.equal(passed.status, 200, "the counted fault is used up");
      assert.equal((await post(`${sim.url}/admin/faults`, { meltdown: true })).status, 400);
      assert.equal((await post(`${sim.url}/admin/faults`, { failRequests: { status: 42 } })).status, 400);
      await post(`${sim.url}/admin/faults`, { healthStatus: 503 });
      assert.equal((await fetch(`${sim.url}/health`)).status, 503);
      await fetch(`${sim.url}/admin/faults`, { method: "DELETE" });
      assert.equal((await fetch(`${sim.url}/health`)).status, 200);
      const records = (await (await fetch(`${sim.url}/admin/requests`)).json()) as {
        requests: Array<{ status: number }>;
      };
      assert.deepEqual(
        records.requests.map((r) => r.status),
        [503, 200],
      );
    } finally {
      await sim.close();
    }
  });

  test("a non-streamed answer that fails is recorded with the status it was answered with", async () => {
    const sim = await startEngineSimulator({ timeScale: 0, faults: { errorAfterTokens: { tokens: 1, count: 1 } } });
    try {
      const failed = await post(`${sim.url}/v1/chat/completions`, { messages: [{ role: "user", content: "x" }] });
      assert.equal(failed.status, 500);
      const [record] = sim.requests();
      assert.deepEqual([record.status, record.outcome], [500, "failed"]);
    } finally {
      await sim.close();
    }
  });

  test("a counted fault is used up in the simulator, not in the object the caller passed", async () => {
    const faults = { failRequests: { status: 503, count: 1 } };
    const statuses: number[] = [];
    for (let run = 0; run < 2; run++) {
      const sim = await startEngineSimulator({ timeScale: 0, faults });
      try {
        statuses.push(
          (await post(`${sim.url}/v1/chat/completions`, { messages: [{ role: "user", content: "x" }] })).status,
        );
        sim.setFaults(faults);
        statuses.push(
          (await post(`${sim.url}/v1/chat/completions`, { messages: [{ role: "user", content: "x" }] })).status,
        );
      } finally {
        await sim.close();
      }
    }
    assert.deepEqual(
      statuses,
      [503, 503, 503, 503],
      "each simulator, and each setFaults, gets the one failure asked for",
    );
    assert.deepEqual(faults, { failRequests: { status: 503, count: 1 } });
  });

  test("a client that leaves during a first-token delay leaves no timer behind, so a closed simulator lets the process exit", async () => {
    const timers = () => process.getActiveResourcesInfo().filter((type) => type === "Timeout").length;
    const sim = await startEngineSimulator({
      timeScale: 0,
      faults: { firstTokenDelayMs: 600_000, keepAliveCommentMs: 5 },
    });
    const before = timers();
    const leaving = new AbortController();
    try {
      const answer = await fetch(`${sim.url}/v1/chat/completions`, {
        method: "POST",
        signal: leaving.signal,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ stream: true, messages: [{ role: "user", content: "hi" }] }),
      });
      assert.equal(answer.status, 200, "headers come before the delayed first token");
      leaving.abort();
      await waitFor(() => sim.requests()[0]?.outcome === "aborted", "the request recorded as aborted");
    } finally {
      await sim.close();
    }
    await new Promise((resolve) => setImmediate(resolve));
    // The ten-minute delay and its keep-alive ticker would otherwise hold the event loop that long.
    assert.ok(timers() <= before, `${timers()} timers now, ${before} before the request`);
  });

  test("invalid simulator options are refused with an error naming the field", async () => {
    await assert.rejects(
      startEngineSimulator({ timeScale: -1 }),
      (err: unknown) => err instanceof BridgeError && err.details.field === "engineSim.timeScale",
    );
    assert.throws(
      () => resolveEngineSimOptions({ minOutputTokens: 10, maxOutputTokens: 5 }),
      (err: unknown) => err instanceof BridgeError && err.details.field === "engineSim.maxOutputTokens",
    );
  });

  test("the CLI entry starts a simulator on the requested port and prints its URL", async () => {
    const lines: string[] = [];
    const sim = await runEngineSimCli(
      [
        "--port",
        "0",
        "--time-scale",
        "0",
        "--model",
        "cli-model",
        "--min-output-tokens",
        "5",
        "--max-output-tokens",
        "5",
      ],
      {
        log: (line) => lines.push(line),
        handleSignals: false,
      },
    );
    try {
      assert.match(lines[0], new RegExp(`cli-model at ${sim.url}`));
      const models = (await (await fetch(`${sim.url}/v1/models`)).json()) as { data: Array<{ id: string }> };
      assert.equal(models.data[0].id, "cli-model");
      const answer = await post(`${sim.url}/v1/chat/completions`, { messages: [{ role: "user", content: "hi" }] });
      assert.equal(JSON.parse(answer.text).usage.completion_tokens, 5);
    } finally {
      await sim.close();
    }
  });
});
