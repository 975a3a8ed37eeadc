/**
 * The baseline: the least a caller must do to stream from the engine itself. One undici Pool, a POST, split
 * SSE events on blank lines, JSON.parse each and take the text. No queue, no retries, no affinity, no metrics.
 */
import { Pool } from "undici";
import type { BenchPrompt, StreamOutcome } from "./modes.ts";

/** What a streamed answer's usage chunk says. */
export interface DirectUsage {
  completionTokens: number;
  promptTokens: number;
  cachedTokens: number;
}

/** Where `streamDirect` hands what it reads, as it reads it. */
export interface DirectSink {
  text(text: string): void;
  usage(usage: DirectUsage): void;
}

export function createDirectPool(url: string, connections: number): Pool {
  return new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 4_000 });
}

/** The chat request body for `prompt`: system and user messages, the tools, max_tokens, streamed with usage. */
export function directChatBody(model: string, prompt: BenchPrompt): string {
  return JSON.stringify({
    model,
    messages: [
      { role: "system", content: prompt.system },
      { role: "user", content: prompt.user },
    ],
    ...(prompt.tools === undefined || prompt.tools.length === 0
      ? {}
      : {
          tools: prompt.tools.map((tool) => ({
            type: "function",
            function: { name: tool.name, description: tool.description, parameters: tool.parameters },
          })),
        }),
    ...(prompt.maxTokens === undefined ? {} : { max_tokens: prompt.maxTokens }),
    stream: true,
    stream_options: { include_usage: true },
  });
}

/** POSTs `prompt` and reads the SSE stream to its end, handing each text delta and the usage to `sink`. */
export async function streamDirect(pool: Pool, model: string, prompt: BenchPrompt, sink: DirectSink): Promise<void> {
  const response = await pool.request({
    method: "POST",
    path: "/v1/chat/completions",
    headers: { "content-type": "application/json" },
    body: directChatBody(model, prompt),
  });
  if (response.statusCode !== 200) {
    // Read to the end, so the connection goes back to the pool.
    await response.body.dump();
    throw new Error(`engine answered ${response.statusCode}`);
  }
  let buffer = "";
  const decoder = new TextDecoder();
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end = buffer.indexOf("\n\n");
    while (end !== -1) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf("\n\n");
      if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
      const object = JSON.parse(event.slice(6)) as {
        choices: Array<{ delta?: { content?: string } }>;
        usage?: {
          completion_tokens: number;
          prompt_tokens: number;
          prompt_tokens_details?: { cached_tokens?: number };
        };
      };
      const text = object.choices[0]?.delta?.content;
      if (text) sink.text(text);
      if (object.usage) {
        sink.usage({
          completionTokens: object.usage.completion_tokens,
          promptTokens: object.usage.prompt_tokens,
          cachedTokens: object.usage.prompt_tokens_details?.cached_tokens ?? 0,
        });
      }
    }
  }
}

export function createDirectCaller(url: string, connections: number, model: string) {
  const pool = createDirectPool(url, connections);
  return {
    async call(prompt: BenchPrompt): Promise<StreamOutcome> {
      const start = performance.now();
      let firstTokenMs: number | undefined;
      let usage: DirectUsage = { completionTokens: 0, promptTokens: 0, cachedTokens: 0 };
      await streamDirect(pool, model, prompt, {
        text() {
          firstTokenMs ??= performance.now() - start;
        },
        usage(u) {
          usage = u;
        },
      });
      return {
        latencyMs: performance.now() - start,
        ttftMs: firstTokenMs ?? Number.NaN,
        tokens: usage.completionTokens,
        promptTokens: usage.promptTokens,
        cachedTokens: usage.cachedTokens,
      };
    },
    close: () => pool.close(),
  };
}
