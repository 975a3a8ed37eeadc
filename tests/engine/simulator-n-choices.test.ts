/**
 * `n > 1` as vLLM answers it: n choices, each with its own index, streamed chunks carrying their choice's index, one
 * role chunk per choice first, and usage counting the tokens of all of them; invalid values are 400s.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import { postChat, waitFor } from "./support.ts";

const MESSAGES = [{ role: "user", content: "how is the pump doing?" }];

interface Choice {
  index: number;
  message: { role: string; content: string; tool_calls: unknown[] };
  finish_reason: string;
}

/** Generated text is one word per token. */
const tokensOf = (text: string) => text.split(" ").length;

test("a non-streamed request with n: 3 gets three choices, indexed, and usage counting all their tokens", async () => {
  const sim = await startEngineSimulator({ timeScale: 0 });
  try {
    const single = JSON.parse((await postChat(sim.url, { messages: MESSAGES })).text) as { choices: Choice[] };
    const res = await postChat(sim.url, { messages: MESSAGES, n: 3 });
    assert.equal(res.status, 200, res.text);
    const body = JSON.parse(res.text) as {
      choices: Choice[];
      usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
    };
    assert.deepEqual(
      body.choices.map((c) => c.index),
      [0, 1, 2],
    );
    for (const choice of body.choices) {
      assert.equal(choice.message.role, "assistant");
      assert.ok(choice.message.content.length > 0);
      assert.equal(choice.finish_reason, "stop");
    }
    // Samples differ, as sampled choices do; the first is what n: 1 gets, so n: 1 answers are unchanged.
    assert.equal(body.choices[0].message.content, single.choices[0].message.content);
    assert.equal(new Set(body.choices.map((c) => c.message.content)).size, 3);
    const completion = body.choices.reduce((sum, c) => sum + tokensOf(c.message.content), 0);
    assert.equal(body.usage.completion_tokens, completion);
    assert.equal(body.usage.total_tokens, body.usage.prompt_tokens + completion);
    assert.equal(sim.requests().at(-1)?.completionTokens, completion);
    // Each choice is one request inside vLLM's engine, and counted as one.
    const metrics = await (await fetch(`${sim.url}/metrics`)).text();
    assert.match(metrics, /^vllm:request_success_total\{[^}]*finished_reason="stop"\} 4$/m);
  } finally {
    await sim.close();
  }
});

test("a streamed request with n: 2 sends a role chunk per choice, then chunks carrying their choice's index", async () => {
  const sim = await startEngineSimulator({ timeScale: 0 });
  try {
    const whole = JSON.parse((await postChat(sim.url, { messages: MESSAGES, n: 2 })).text) as { choices: Choice[] };
    const res = await postChat(sim.url, {
      messages: MESSAGES,
      n: 2,
      stream: true,
      stream_options: { include_usage: true },
    });
    assert.equal(res.status, 200, res.text);
    const events = res.text
      .split("\n\n")
      .filter((e) => e.startsWith("data: "))
      .map((e) => e.slice(6));
    assert.equal(events.at(-1), "[DONE]");
    const chunks = events.slice(0, -1).map(
      (e) =>
        JSON.parse(e) as {
          choices: Array<{ index: number; delta: { role?: string; content?: string }; finish_reason: string | null }>;
          usage?: { completion_tokens: number };
        },
    );
    // One choice per chunk, as vLLM sends them.
    for (const chunk of chunks.slice(0, -1)) assert.equal(chunk.choices.length, 1);
    assert.deepEqual(
      chunks.slice(0, 2).map((c) => [c.choices[0].index, c.choices[0].delta]),
      [
        [0, { role: "assistant", content: "" }],
        [1, { role: "assistant", content: "" }],
      ],
    );
    const texts = ["", ""];
    const finished: Array<string | null> = [null, null];
    for (const chunk of chunks.slice(2, -1)) {
      const choice = chunk.choices[0];
      assert.equal(finished[choice.index], null, "nothing of a choice after its finish_reason");
      texts[choice.index] += choice.delta.content ?? "";
      finished[choice.index] = choice.finish_reason;
    }
    assert.deepEqual(
      texts,
      whole.choices.map((c) => c.message.content),
    );
    assert.deepEqual(finished, ["stop", "stop"]);
    const usage = chunks.at(-1);
    assert.deepEqual(usage?.choices, []);
    assert.equal(usage?.usage?.completion_tokens, tokensOf(texts[0]) + tokensOf(texts[1]));
  } finally {
    await sim.close();
  }
});

test("n below 1, not an integer, or above 1 with greedy sampling is a 400 as in vLLM; null is n: 1", async () => {
  const sim = await startEngineSimulator({ timeScale: 0 });
  const message = (text: string) => JSON.parse(text).error.message as string;
  try {
    const zero = await postChat(sim.url, { messages: MESSAGES, n: 0 });
    assert.equal(zero.status, 400, zero.text);
    assert.match(message(zero.text), /n must be at least 1, got 0/);
    const fraction = await postChat(sim.url, { messages: MESSAGES, n: 1.5 });
    assert.equal(fraction.status, 400, fraction.text);
    assert.match(message(fraction.text), /^n: /);
    const greedy = await postChat(sim.url, { messages: MESSAGES, n: 2, temperature: 0 });
    assert.equal(greedy.status, 400, greedy.text);
    assert.match(message(greedy.text), /n must be 1 when using greedy sampling, got 2/);
    const unset = await postChat(sim.url, { messages: MESSAGES, n: null, temperature: 0 });
    assert.equal(unset.status, 200, unset.text);
    assert.equal(JSON.parse(unset.text).choices.length, 1);
  } finally {
    await sim.close();
  }
});

test("a request whose choices do not all fit the waiting queue is a 503 as a whole; one that fits is served", async () => {
  const sim = await startEngineSimulator({ timeScale: 0, maxNumSeqs: 2, maxWaiting: 1 });
  try {
    const tooMany = await postChat(sim.url, { messages: MESSAGES, n: 4 });
    assert.equal(tooMany.status, 503, tooMany.text);
    const fits = await postChat(sim.url, { messages: MESSAGES, n: 3 });
    assert.equal(fits.status, 200, fits.text);
    assert.equal(JSON.parse(fits.text).choices.length, 3);
  } finally {
    await sim.close();
  }
});

test("a client that leaves mid-answer frees every choice's slot, each counted as an abort", async () => {
  const sim = await startEngineSimulator({ timeScale: 1 });
  const controller = new AbortController();
  try {
    const res = await fetch(`${sim.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ messages: MESSAGES, n: 3, stream: true, max_tokens: 2000, ignore_eos: true }),
      signal: controller.signal,
    });
    const reader = res.body?.getReader();
    await reader?.read();
    assert.equal(sim.stats().running, 3);
    controller.abort();
    await waitFor(() => sim.stats().running === 0 && sim.requests().at(-1)?.outcome === "aborted", "the aborts");
    const metrics = await (await fetch(`${sim.url}/metrics`)).text();
    assert.match(metrics, /^vllm:request_success_total\{[^}]*finished_reason="abort"\} 3$/m);
  } finally {
    await sim.close();
  }
});
