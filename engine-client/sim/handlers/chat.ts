/**
 * `POST /v1/chat/completions`: validates, applies faults, plans the answer (one plan per choice of `n`), hands their
 * sequences to the batch scheduler and writes each token as it is generated (chat-writer.ts), as SSE chunks shaped
 * like vLLM's or as one JSON body.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { parseChatRequest } from "../chat-request.ts";
import type { SimContext, SimRequestRecord } from "../context.ts";
import { ChatWriter } from "../chat-writer.ts";
import { type GenerationPlan, planGeneration } from "../generator.ts";
import { completedFinishReason } from "../metrics.ts";
import { readBody, sendError } from "../respond.ts";
import type { Sequence } from "../scheduler.ts";
import { renderPrompt, tokenize } from "../tokenizer.ts";

export async function handleChat(ctx: SimContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const receivedAt = performance.now();
  const sinceReceivedS = () => (performance.now() - receivedAt) / 1000;
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
  // Each of the `n` choices is a sequence of its own in the engine, as vLLM's parallel sampling makes them.
  if (!ctx.scheduler.hasRoom(request.n)) {
    ctx.metrics.rejected++;
    return reject(503, "ServiceUnavailableError", "the engine's waiting queue is full", {
      "retry-after": String(ctx.options.retryAfterSeconds),
    });
  }
  const last = request.messages[request.messages.length - 1];
  const plans: GenerationPlan[] = [];
  for (let choice = 0; choice < request.n; choice++) {
    plans.push(
      planGeneration({
        prompt,
        model: request.model,
        choice,
        lastRole: last.role,
        lastContent: last.content,
        tools: request.tools,
        toolChoice: request.toolChoice,
        jsonSchema: request.jsonSchema,
        maxTokens,
        ignoreEos: request.ignoreEos,
        minOutputTokens: ctx.options.minOutputTokens,
        maxOutputTokens: ctx.options.maxOutputTokens,
      }),
    );
  }
  record.promptTokens = promptTokens.length;
  const errorAfter = ctx.takeFault("errorAfterTokens") ? ctx.faults.errorAfterTokens?.tokens : undefined;
  const dropAfter = ctx.takeFault("dropAfterTokens") ? ctx.faults.dropAfterTokens?.tokens : undefined;
  const out = new ChatWriter(ctx, res, record, request.stream, request.includeUsage, plans.length);
  let done = false;
  const ended = plans.map(() => false);
  let generating = plans.length;
  /** A choice generated its last token; the answer ends with the last choice. */
  const choiceEnded = (choice: number) => {
    ended[choice] = true;
    // vLLM counts each choice as the request it is inside the engine.
    ctx.metrics.finished(completedFinishReason(plans[choice].finishReason), sinceReceivedS());
    if (--generating > 0) return;
    done = true;
    record.outcome = "completed";
    record.finishReason = plans[0].finishReason;
    out.end();
  };
  /** The request ends before its answer did: every choice still generating ends with it, its slot freed. */
  const stop = (outcome: "aborted" | "failed" | "rejected", reason: string) => {
    if (done) return;
    done = true;
    record.outcome = outcome;
    record.finishReason = reason;
    for (const [choice, sequence] of sequences.entries()) {
      if (ended[choice]) continue;
      // A request the engine never ran is not counted; one ended early is aborted there, as vLLM aborts it.
      if (outcome !== "rejected") ctx.metrics.finished("abort", sinceReceivedS());
      ctx.scheduler.cancel(sequence);
    }
  };
  const sequences = plans.map(
    (plan, choice): Sequence => ({
      promptTokens,
      outputTokens: plan.pieces.length,
      onToken: (index, cachedTokens) => {
        if (index === 0) {
          // The request's first output says what was cached; each choice has a first token of its own.
          if (record.completionTokens === 0) record.cachedTokens = cachedTokens;
          // Counted when prefilled, per choice, as vLLM's engine counts it: not for a prompt refused or left waiting.
          ctx.metrics.promptTokens += promptTokens.length;
          ctx.metrics.observeTtft(sinceReceivedS());
        }
        if (dropAfter !== undefined && index >= dropAfter) {
          stop("failed", "error");
          res.destroy();
          return;
        }
        if (errorAfter !== undefined && index >= errorAfter) {
          stop("failed", "error");
          out.fail("InternalServerError", "injected mid-stream failure");
          return;
        }
        ctx.metrics.generationTokens++;
        record.completionTokens++;
        const isLast = index === plan.pieces.length - 1;
        out.token(choice, plan.pieces[index], isLast ? plan.finishReason : null);
        if (isLast) choiceEnded(choice);
      },
    }),
  );
  res.on("close", () => {
    // The client went away before the answer ended: free the slots, as vLLM aborts the request.
    if (!done) stop("aborted", "abort");
  });
  if (request.stream) out.open();
  // A choice with nothing to generate ends at once (cannot happen with max_tokens >= 1 and minOutputTokens >= 1,
  // kept so a response can never hang).
  for (const [choice, plan] of plans.entries()) if (plan.pieces.length === 0) choiceEnded(choice);
  if (done) return;
  const delayMs = ctx.faults.firstTokenDelayMs;
  if (delayMs > 0) {
    const everyMs = ctx.faults.keepAliveCommentMs;
    const ticker = request.stream && everyMs > 0 ? setInterval(() => out.comment("keep-alive"), everyMs) : undefined;
    try {
      await delayUnlessClosed(res, delayMs);
    } finally {
      if (ticker !== undefined) clearInterval(ticker);
    }
  }
  if (done) return;
  if (!ctx.scheduler.submit(...sequences.filter((sequence) => sequence.outputTokens > 0))) {
    stop("rejected", "error");
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
