/**
 * One engine round, run as a background task outside the mailbox: streams the chat completion, reports text deltas
 * as task progress (streaming devices) and returns text, tool calls, finish reason and usage as the task result, or
 * a ContextRefusal when the engine refused the prompt as too long for its context window.
 */
import type { Value, ValueMap } from "../../../codecs/frames.ts";
import type { ChatRequest, ChatStreamEvent, ChatToolCall, ChatUsage, ReasoningEngine } from "../../engine.ts";
import { CONTEXT_LENGTH_REASON, isContextLengthRefusal } from "../../engine.ts";
import { errorMessage } from "../../errors.ts";
import type { TaskContext } from "../../types.ts";
import { isValueMap } from "../values.ts";

/** What a round returns (as a task result Value). */
export interface RoundResult {
  text: string;
  toolCalls: ChatToolCall[];
  finishReason: string;
  usage: ChatUsage;
}

/** How a round asks the engine: its time budget and its place among waiting requests. */
export interface RoundCall {
  /** The round's time budget, queueing included (DeviceAgent option `reasonTimeoutMs`). */
  timeoutMs: number;
  /** Priority among waiting engine requests (DeviceAgent option `reasonPriority`). */
  priority: number;
}

/** Builds the task body of one round. `streamText` reports each text delta as progress `{ text }`. */
export function runRound(
  engine: ReasoningEngine,
  request: ChatRequest,
  agentId: string,
  streamText: boolean,
  call: RoundCall,
): (task: TaskContext) => Promise<Value> {
  return async (task) => {
    let text = "";
    const toolCalls: ChatToolCall[] = [];
    let finishReason = "stop";
    let usage: ChatUsage = { promptTokens: 0, completionTokens: 0, cachedTokens: 0 };
    const take = (event: ChatStreamEvent) => {
      if (event.type === "text") {
        if (event.text.length === 0) return;
        text += event.text;
        if (streamText) task.progress({ text: event.text });
      } else if (event.type === "tool-call") {
        toolCalls.push(event.call);
      } else {
        finishReason = event.finishReason;
        usage = event.usage;
      }
    };
    const options = {
      agentId,
      signal: task.signal,
      // A budget, not an absolute deadline: the engine counts it on its own clock, which need not be the agent's
      // (an injected test clock); the client turns it into its deadline when it accepts the call.
      timeoutMs: call.timeoutMs,
      priority: call.priority,
    };
    try {
      if (engine.streamBatches !== undefined) {
        // Events as each read of the engine's connection brings them, with no async-iterator step per event.
        await engine.streamBatches(request, options, (events) => {
          for (const event of events) take(event);
        });
      } else {
        for await (const event of engine.stream(request, options)) take(event);
      }
    } catch (err) {
      // The one refusal the agent can cure by sending less comes back as a value: a task failure keeps only a code
      // and a message, and the code (BAD_REQUEST) is the same as for refusals no shorter prompt would cure.
      if (isContextLengthRefusal(err) && text === "" && toolCalls.length === 0) {
        const refusal: ValueMap = { refused: CONTEXT_LENGTH_REASON, message: errorMessage(err) };
        return refusal;
      }
      throw err;
    }
    return {
      text,
      toolCalls: toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments })),
      finishReason,
      usage: {
        promptTokens: usage.promptTokens,
        completionTokens: usage.completionTokens,
        cachedTokens: usage.cachedTokens,
      },
    };
  };
}

/** What a round returns instead of a RoundResult when the engine refused its prompt as too long for its context. */
export interface ContextRefusal {
  refused: typeof CONTEXT_LENGTH_REASON;
  /** The engine client's error message (the engine's own words included). */
  message: string;
}

/** The context-length refusal a round's task result holds, or undefined when the round was answered. */
export function parseContextRefusal(value: Value): ContextRefusal | undefined {
  if (!isValueMap(value) || value.refused !== CONTEXT_LENGTH_REASON) return undefined;
  return { refused: CONTEXT_LENGTH_REASON, message: typeof value.message === "string" ? value.message : "" };
}

function num(value: Value | undefined): number {
  return typeof value === "number" && Number.isFinite(value) ? value : typeof value === "bigint" ? Number(value) : 0;
}

/** Reads a task result back into a RoundResult (it went through the runtime as a Value). */
export function parseRoundResult(value: Value): RoundResult {
  const map = isValueMap(value) ? value : {};
  const usage = isValueMap(map.usage) ? map.usage : {};
  const calls = Array.isArray(map.toolCalls) ? map.toolCalls : [];
  return {
    text: typeof map.text === "string" ? map.text : "",
    toolCalls: calls.filter(isValueMap).map((c, i) => ({
      // Some servers omit the id; the tool result must still name the call it answers.
      id: typeof c.id === "string" && c.id !== "" ? c.id : `call-${i}`,
      name: typeof c.name === "string" ? c.name : "",
      arguments: typeof c.arguments === "string" ? c.arguments : "",
    })),
    finishReason: typeof map.finishReason === "string" ? map.finishReason : "stop",
    usage: {
      promptTokens: num(usage.promptTokens),
      completionTokens: num(usage.completionTokens),
      cachedTokens: num(usage.cachedTokens),
    },
  };
}
