/**
 * The baseline: the least a caller must do to stream from the engine itself. One undici Pool, a POST, split
 * SSE events on blank lines, JSON.parse each and take the text. No queue, no retries, no affinity, no metrics.
 */
import { Pool } from "undici";
import type { BenchPrompt, StreamOutcome } from "./modes.ts";

export function createDirectCaller(url: string, connections: number, model: string) {
  const pool = new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 4_000 });
  return {
    async call(prompt: BenchPrompt): Promise<StreamOutcome> {
      const start = performance.now();
      const response = await pool.request({
        method: "POST",
        path: "/v1/chat/completions",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
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
        }),
      });
      if (response.statusCode !== 200) throw new Error(`engine answered ${response.statusCode}`);
      let buffer = "";
      let firstTokenMs: number | undefined;
      let tokens = 0;
      let cached = 0;
      let prompted = 0;
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
          if (object.choices[0]?.delta?.content) firstTokenMs ??= performance.now() - start;
          if (object.usage) {
            tokens = object.usage.completion_tokens;
            prompted = object.usage.prompt_tokens;
            cached = object.usage.prompt_tokens_details?.cached_tokens ?? 0;
          }
        }
      }
      return {
        latencyMs: performance.now() - start,
        ttftMs: firstTokenMs ?? Number.NaN,
        tokens,
        promptTokens: prompted,
        cachedTokens: cached,
      };
    },
    close: () => pool.close(),
  };
}
