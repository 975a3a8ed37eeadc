/**
 * Writes one chat answer of `n` choices, as SSE chunks shaped like vLLM's or as one JSON body. Streamed, each chunk
 * holds one choice and names it by `index`, as vLLM sends them; whole, the choices are listed in index order.
 */
import type { ServerResponse } from "node:http";
import type { SimContext, SimRequestRecord } from "./context.ts";
import type { Piece } from "./generator.ts";
import { errorBody } from "./respond.ts";

/** What a choice of an answer that is not streamed has gathered so far. */
interface WholeChoice {
  text: string;
  call: { id: string; name: string; arguments: string } | undefined;
  finishReason: string;
}

export class ChatWriter {
  readonly #created = Math.floor(Date.now() / 1000);
  /** Filled only for an answer that is not streamed: a stream keeps nothing per token. */
  readonly #whole: WholeChoice[] = [];

  constructor(
    private readonly ctx: SimContext,
    private readonly res: ServerResponse,
    private readonly record: SimRequestRecord,
    private readonly stream: boolean,
    private readonly includeUsage: boolean,
    private readonly choices: number,
  ) {
    if (!stream) {
      for (let i = 0; i < choices; i++) this.#whole.push({ text: "", call: undefined, finishReason: "stop" });
    }
  }

  open(): void {
    this.res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
    this.res.flushHeaders();
  }

  /** One token of choice `index`; `record.completionTokens` already counts it (over all choices). */
  token(index: number, piece: Piece, finishReason: string | null): void {
    if (!this.stream) {
      const choice = this.#whole[index];
      if (piece.type === "text") choice.text += piece.text;
      else if (piece.type === "tool-start") choice.call = { id: piece.id, name: piece.name, arguments: "" };
      else if (choice.call !== undefined) choice.call.arguments += piece.text;
      if (finishReason !== null) choice.finishReason = finishReason;
      return;
    }
    // vLLM sends every choice's role chunk when the first output of the request comes, before that output.
    if (this.record.completionTokens === 1) {
      for (let i = 0; i < this.choices; i++) this.#send(this.#chunk(i, { role: "assistant", content: "" }, null));
    }
    let delta: Record<string, unknown>;
    if (piece.type === "text") delta = { content: piece.text };
    else if (piece.type === "tool-start") {
      // vLLM's tool parsers dump the first fragment's function with exclude_none: a name and no `arguments` key,
      // so a client that concatenates `arguments` unchecked is caught here, not first against vLLM.
      delta = { tool_calls: [{ id: piece.id, type: "function", index: 0, function: { name: piece.name } }] };
    } else delta = { tool_calls: [{ index: 0, function: { arguments: piece.text } }] };
    this.#send(this.#chunk(index, delta, finishReason));
  }

  /** Ends the answer once every choice has finished. */
  end(): void {
    const usage = {
      prompt_tokens: this.record.promptTokens,
      total_tokens: this.record.promptTokens + this.record.completionTokens,
      completion_tokens: this.record.completionTokens,
      prompt_tokens_details: { cached_tokens: this.record.cachedTokens },
    };
    const { id } = this.record;
    const { model } = this.ctx.options;
    if (this.stream) {
      if (this.includeUsage) {
        this.#send({ id, object: "chat.completion.chunk", created: this.#created, model, choices: [], usage });
      }
      this.#done();
      return;
    }
    const body = JSON.stringify({
      id,
      object: "chat.completion",
      created: this.#created,
      model,
      choices: this.#whole.map((choice, index) => ({
        index,
        message: wholeMessage(choice),
        logprobs: null,
        finish_reason: choice.finishReason,
        stop_reason: null,
      })),
      usage,
    });
    this.res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    this.res.end(body);
  }

  /** An error after the answer began: vLLM sends an error object as an SSE event, then `[DONE]`. */
  fail(type: string, message: string, status = 500): void {
    const body = errorBody(this.ctx, status, type, message);
    if (this.stream) {
      this.#send(body);
      this.#done();
      return;
    }
    const text = JSON.stringify(body);
    // Not streamed: nothing was sent yet, so this is the status the client gets (a stream keeps its 200).
    this.record.status = status;
    this.res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    this.res.end(text);
  }

  /** An SSE comment line: ignored by parsers, but it is body bytes, so it resets idle timers on the way. */
  comment(text: string): void {
    if (this.res.writableEnded || this.res.destroyed) return;
    const eol = this.ctx.options.sseLineEnding;
    this.res.write(`: ${text}${eol}${eol}`);
  }

  #chunk(index: number, delta: Record<string, unknown>, finishReason: string | null): Record<string, unknown> {
    const choice: Record<string, unknown> = { index, delta, logprobs: null, finish_reason: finishReason };
    if (finishReason !== null) choice.stop_reason = null;
    return {
      id: this.record.id,
      object: "chat.completion.chunk",
      created: this.#created,
      model: this.ctx.options.model,
      choices: [choice],
    };
  }

  #send(object: unknown): void {
    const eol = this.ctx.options.sseLineEnding;
    this.res.write(`data: ${JSON.stringify(object)}${eol}${eol}`);
  }

  #done(): void {
    const eol = this.ctx.options.sseLineEnding;
    this.res.end(`data: [DONE]${eol}${eol}`);
  }
}

/**
 * A whole answer's message, in vLLM's shape: the id sits beside `function`, which holds only name and arguments. A
 * plain answer still has `tool_calls: []`: vLLM's ChatMessage defaults the list and dumps it whole.
 */
function wholeMessage(choice: WholeChoice): Record<string, unknown> {
  if (choice.call === undefined) return { role: "assistant", content: choice.text, tool_calls: [] };
  const { id, name, arguments: args } = choice.call;
  return {
    role: "assistant",
    content: null,
    tool_calls: [{ id, type: "function", function: { name, arguments: args } }],
  };
}
