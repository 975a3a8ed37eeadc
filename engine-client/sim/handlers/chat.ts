/**
 * `POST /v1/chat/completions`: validates, applies faults, plans the answer, hands the sequence to the batch
 * scheduler and writes each token as it is generated, as SSE chunks shaped like vLLM's or as one JSON body.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { parseChatRequest } from "../chat-request.ts";
import type { SimContext, SimRequestRecord } from "../context.ts";
import { type Piece, planGeneration } from "../generator.ts";
import { engineFinishReason } from "../metrics.ts";
import { errorBody, readBody, sendError } from "../respond.ts";
import type { Sequence } from "../scheduler.ts";
import { renderPrompt, tokenize } from "../tokenizer.ts";

export async function handleChat(ctx: SimContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const receivedAt = performance.now();
  const text = await readBody(req);
  if (text === undefined) return sendError(ctx, res, 413, "BadRequestError", "request body too large");
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return sendError(ctx, res, 400, "BadRequestError", "request body is not valid JSON");
  }
  const parsed = parseChatRequest(raw, ctx.options.model);
  const requestId = req.headers["x-request-id"];
  const record = ctx.record({
    id: ctx.nextId(),
    requestId: typeof requestId === "string" ? requestId : undefined,
    receivedAt: Date.now(),
    stream: parsed.ok && parsed.request.stream,
    status: 200,
    outcome: "running",
    promptTokens: 0,
    cachedTokens: 0,
    completionTokens: 0,
    body: raw,
  });
  const reject = (status: number, type: string, message: string, headers: Record<string, string> = {}) => {
    record.status = status;
    record.outcome = "rejected";
    sendError(ctx, res, status, type, message, headers);
  };
  if (ctx.faults.stall) return holdUnanswered(res, record);
  if (!parsed.ok) return reject(parsed.status, parsed.type, parsed.message);
  const request = parsed.request;
  if (ctx.takeFault("failRequests")) {
    const fault = ctx.faults.failRequests ?? { status: 503 };
    const headers: Record<string, string> = {};
    if (fault.retryAfterSeconds !== undefined) headers["retry-after"] = String(fault.retryAfterSeconds);
    return reject(fault.status, "ServiceUnavailableError", "injected failure", headers);
  }
  const prompt = renderPrompt(request.messages, request.toolsJson);
  const promptTokens = tokenize(prompt);
  const maxLen = ctx.options.maxModelLen;
  const maxTokens =
    request.maxTokens ?? Math.max(1, Math.min(ctx.options.defaultMaxTokens, maxLen - promptTokens.length));
  // At least one completion token must fit, as in vLLM, so no sequence is ever scheduled with nothing to do.
  if (promptTokens.length + maxTokens > maxLen) {
    return reject(
      400,
      "BadRequestError",
      `This model's maximum context length is ${maxLen} tokens. However, you requested ${promptTokens.length + maxTokens} tokens (${promptTokens.length} in the messages, ${maxTokens} in the completion).`,
    );
  }
  if (!ctx.scheduler.hasRoom()) {
    ctx.metrics.rejected++;
    return reject(503, "ServiceUnavailableError", "the engine's waiting queue is full", {
      "retry-after": String(ctx.options.retryAfterSeconds),
    });
  }
  const last = request.messages[request.messages.length - 1];
  const plan = planGeneration({
    prompt,
    model: request.model,
    lastRole: last.role,
    lastContent: last.content,
    tools: request.tools,
    toolChoice: request.toolChoice,
    jsonSchema: request.jsonSchema,
    maxTokens,
    ignoreEos: request.ignoreEos,
    minOutputTokens: ctx.options.minOutputTokens,
    maxOutputTokens: ctx.options.maxOutputTokens,
  });
  record.promptTokens = promptTokens.length;
  const errorAfter = ctx.takeFault("errorAfterTokens") ? ctx.faults.errorAfterTokens?.tokens : undefined;
  const dropAfter = ctx.takeFault("dropAfterTokens") ? ctx.faults.dropAfterTokens?.tokens : undefined;
  const out = new ChatWriter(ctx, res, record, request.stream, request.includeUsage);
  let done = false;
  const sequence: Sequence = {
    promptTokens,
    outputTokens: plan.pieces.length,
    onToken: (index, cachedTokens) => {
      if (index === 0) {
        record.cachedTokens = cachedTokens;
        ctx.metrics.observeTtft((performance.now() - receivedAt) / 1000);
      }
      if (dropAfter !== undefined && index >= dropAfter) {
        finish("failed", "error");
        res.destroy();
        return;
      }
      if (errorAfter !== undefined && index >= errorAfter) {
        finish("failed", "error");
        out.fail("InternalServerError", "injected mid-stream failure");
        return;
      }
      ctx.metrics.generationTokens++;
      record.completionTokens = index + 1;
      const isLast = index === plan.pieces.length - 1;
      out.token(plan.pieces[index], isLast ? plan.finishReason : null);
      if (isLast) {
        finish("completed", plan.finishReason);
        out.end(plan.finishReason);
      }
    },
  };
  const finish = (outcome: Exclude<SimRequestRecord["outcome"], "running">, reason: string) => {
    if (done) return;
    done = true;
    record.outcome = outcome;
    record.finishReason = reason;
    const counted = engineFinishReason(outcome, reason);
    if (counted !== undefined) ctx.metrics.finished(counted);
    ctx.scheduler.cancel(sequence);
  };
  res.on("close", () => {
    // The client went away before the answer ended: free the slot, as vLLM aborts the request.
    if (!done) finish("aborted", "abort");
  });
  if (request.stream) out.open();
  if (plan.pieces.length === 0) {
    // Nothing to generate (cannot happen with max_tokens >= 1, kept so a response can never hang).
    finish("completed", plan.finishReason);
    return out.end(plan.finishReason);
  }
  const delayMs = ctx.faults.firstTokenDelayMs;
  if (delayMs > 0 && !done) {
    const everyMs = ctx.faults.keepAliveCommentMs;
    const ticker = request.stream && everyMs > 0 ? setInterval(() => out.comment("keep-alive"), everyMs) : undefined;
    try {
      await delayUnlessClosed(res, delayMs);
    } finally {
      if (ticker !== undefined) clearInterval(ticker);
    }
  }
  if (done) return;
  ctx.metrics.promptTokens += promptTokens.length;
  if (!ctx.scheduler.submit(sequence)) {
    finish("rejected", "error");
    out.fail("ServiceUnavailableError", "the engine's waiting queue is full", 503);
  }
}

/** The `stall` fault: no headers, no body, ever; the request is over when its client leaves or the simulator closes. */
function holdUnanswered(res: ServerResponse, record: SimRequestRecord): Promise<void> {
  record.status = 0;
  return new Promise((resolve) => {
    res.once("close", () => {
      record.outcome = "aborted";
      resolve();
    });
  });
}

/**
 * Waits `delayMs`, or less when the response closes first (the client left, or the simulator closed): neither the
 * timer nor the keep-alive ticker may outlive the request and hold the process's event loop.
 */
function delayUnlessClosed(res: ServerResponse, delayMs: number): Promise<void> {
  return new Promise((resolve) => {
    const closed = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      res.off("close", closed);
      resolve();
    }, delayMs);
    res.once("close", closed);
  });
}

/** Writes one answer, streamed or whole. */
class ChatWriter {
  readonly #created = Math.floor(Date.now() / 1000);
  #text = "";
  #call: { id: string; name: string; arguments: string } | undefined;

  constructor(
    private readonly ctx: SimContext,
    private readonly res: ServerResponse,
    private readonly record: SimRequestRecord,
    private readonly stream: boolean,
    private readonly includeUsage: boolean,
  ) {}

  open(): void {
    this.res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
    this.res.flushHeaders();
  }

  token(piece: Piece, finishReason: string | null): void {
    if (!this.stream) {
      if (piece.type === "text") this.#text += piece.text;
      else if (piece.type === "tool-start") this.#call = { id: piece.id, name: piece.name, arguments: "" };
      else if (this.#call !== undefined) this.#call.arguments += piece.text;
      return;
    }
    if (this.record.completionTokens === 1) this.#send(this.#chunk({ role: "assistant", content: "" }, null));
    let delta: Record<string, unknown>;
    if (piece.type === "text") delta = { content: piece.text };
    else if (piece.type === "tool-start") {
      // vLLM's tool parsers dump the first fragment's function with exclude_none: a name and no `arguments` key,
      // so a client that concatenates `arguments` unchecked is caught here, not first against vLLM.
      delta = { tool_calls: [{ id: piece.id, type: "function", index: 0, function: { name: piece.name } }] };
    } else delta = { tool_calls: [{ index: 0, function: { arguments: piece.text } }] };
    this.#send(this.#chunk(delta, finishReason));
  }

  end(finishReason: string): void {
    const usage = {
      prompt_tokens: this.record.promptTokens,
      total_tokens: this.record.promptTokens + this.record.completionTokens,
      completion_tokens: this.record.completionTokens,
      prompt_tokens_details: { cached_tokens: this.record.cachedTokens },
    };
    if (this.stream) {
      if (this.includeUsage) this.#send({ ...this.#chunk(null, null), choices: [], usage });
      this.#done();
      return;
    }
    // vLLM's shape: the id sits beside `function`, which holds only name and arguments. A plain answer still has
    // `tool_calls: []`: vLLM's ChatMessage defaults the list and dumps it whole.
    let toolCalls: unknown[] = [];
    if (this.#call) {
      const { id, name, arguments: args } = this.#call;
      toolCalls = [{ id, type: "function", function: { name, arguments: args } }];
    }
    const message = { role: "assistant", content: this.#call ? null : this.#text, tool_calls: toolCalls };
    const body = JSON.stringify({
      id: this.record.id,
      object: "chat.completion",
      created: this.#created,
      model: this.ctx.options.model,
      choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason, stop_reason: null }],
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

  #chunk(delta: Record<string, unknown> | null, finishReason: string | null): Record<string, unknown> {
    const choice: Record<string, unknown> = { index: 0, delta, logprobs: null, finish_reason: finishReason };
    if (finishReason !== null) choice.stop_reason = null;
    return {
      id: this.record.id,
      object: "chat.completion.chunk",
      created: this.#created,
      model: this.ctx.options.model,
      choices: delta === null ? [] : [choice],
    };
  }

  /** An SSE comment line: ignored by parsers, but it is body bytes, so it resets idle timers on the way. */
  comment(text: string): void {
    if (this.res.writableEnded || this.res.destroyed) return;
    const eol = this.ctx.options.sseLineEnding;
    this.res.write(`: ${text}${eol}${eol}`);
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
