/**
 * A ReasoningEngine whose every chat waits until the test answers it: with text, with a tool call, or with a fault.
 * Tests that need to know which rounds run at the same time (concurrency bounds, rounds held while an operator
 * decides) use it instead of the simulator, whose answers come as fast as the machine allows.
 */
import type { ChatRequest, ChatStreamEvent, ReasoningEngine } from "../../agents/engine.ts";
import { waitFor } from "./device-harness.ts";

/** One chat the agent asked for, held until `reply` or `fail`. */
export interface ScriptedCall {
  readonly request: ChatRequest;
  /** True once the agent aborted it (its turn was cancelled). */
  readonly aborted: boolean;
  /** True once it was answered, failed or aborted. */
  readonly settled: boolean;
  /** Answers with `text`, or with one call of `tool` (arguments `args`, JSON text), after `text` when given. */
  reply(answer: { text: string } | { tool: string; args?: string; text?: string }): void;
  fail(error: Error): void;
}

export interface ScriptedEngine extends ReasoningEngine {
  /** Every chat asked for so far, in order. */
  readonly calls: ScriptedCall[];
  /** The chats not settled yet. */
  open(): ScriptedCall[];
  /** Waits until the agent asked for call number `index` (0-based) and returns it. */
  call(index: number): Promise<ScriptedCall>;
}

const USAGE = { promptTokens: 10, completionTokens: 2, cachedTokens: 0 };

export function scriptedEngine(): ScriptedEngine {
  const calls: ScriptedCall[] = [];
  return {
    calls,
    open: () => calls.filter((c) => !c.settled),
    call: (index) => waitFor(() => calls[index], `engine call ${index}`),
    async *stream(request, options): AsyncIterable<ChatStreamEvent> {
      let settle!: (outcome: { events: ChatStreamEvent[] } | { error: Error }) => void;
      const outcome = new Promise<{ events: ChatStreamEvent[] } | { error: Error }>((resolve) => {
        settle = resolve;
      });
      const call = {
        request,
        aborted: false,
        settled: false,
        reply(answer: { text: string } | { tool: string; args?: string; text?: string }) {
          if (call.settled) throw new Error("this engine call is settled already");
          call.settled = true;
          const events: ChatStreamEvent[] = answer.text === undefined ? [] : [{ type: "text", text: answer.text }];
          if ("tool" in answer) {
            const id = `call-${calls.length}`;
            events.push({ type: "tool-call", call: { id, name: answer.tool, arguments: answer.args ?? "{}" } });
          }
          events.push({ type: "done", finishReason: "tool" in answer ? "tool_calls" : "stop", usage: USAGE });
          settle({ events });
        },
        fail(error: Error) {
          if (call.settled) throw new Error("this engine call is settled already");
          call.settled = true;
          settle({ error });
        },
      };
      calls.push(call);
      options.signal?.addEventListener("abort", () => {
        if (call.settled) return;
        call.aborted = true;
        call.settled = true;
        settle({ error: new Error("aborted") });
      });
      const result = await outcome;
      if ("error" in result) throw result.error;
      yield* result.events;
    },
  };
}
