/**
 * Turns the `chat.completion.chunk` objects of one streamed answer into the agents' `ChatStreamEvent`s.
 * Tool calls arrive as fragments keyed by `index` (the first fragment carries id and name, later ones append
 * to `arguments`), so they are assembled here and emitted whole when the choice finishes.
 */
import type { ChatStreamEvent, ChatToolCall, ChatUsage } from "../agents/engine.ts";
import { unwrapTgiToolEnvelope } from "./tgi-tool-envelope.ts";
import { asObject, parseUsage } from "./wire.ts";

interface PartialCall {
  /** The `index` its fragments came with. */
  index: number;
  id: string;
  name: string;
  arguments: string;
}

/** Stateful assembler for one stream; feed it each chunk object, then call `finish` on `[DONE]`. */
export class StreamAssembler {
  /** Every call in the order it opened; `#open` has the one each index's fragments now go to. */
  #calls: PartialCall[] = [];
  #open = new Map<number, PartialCall>();
  #finishReason: string | undefined;
  #usage: ChatUsage | undefined;
  #callsEmitted = false;

  /** Events produced by one chunk (zero or more text deltas and, when the choice finishes, its tool calls). */
  push(chunk: unknown): ChatStreamEvent[] {
    const object = asObject(chunk);
    if (object === undefined) return [];
    const events: ChatStreamEvent[] = [];
    const usage = parseUsage(object.usage);
    if (usage !== undefined) this.#usage = usage;
    if (!Array.isArray(object.choices)) return events;
    for (const rawChoice of object.choices) {
      const choice = asObject(rawChoice);
      // Only the first choice is requested (n = 1); others are ignored rather than interleaved.
      if (choice === undefined || (choice.index !== undefined && choice.index !== 0)) continue;
      const delta = asObject(choice.delta);
      if (delta !== undefined) {
        if (typeof delta.content === "string" && delta.content.length > 0) {
          events.push({ type: "text", text: delta.content });
        }
        if (Array.isArray(delta.tool_calls)) this.#addToolFragments(delta.tool_calls);
        // TGI before 3.2 streams one fragment as the object itself, not in a list: the same fragment, read alike.
        else if (asObject(delta.tool_calls) !== undefined) this.#addToolFragments([delta.tool_calls]);
      }
      if (typeof choice.finish_reason === "string") {
        this.#finishReason = choice.finish_reason;
        events.push(...this.#flushCalls());
      }
    }
    return events;
  }

  /** The closing events after `[DONE]`: tool calls not yet emitted, then exactly one `done`. */
  finish(): ChatStreamEvent[] {
    const events = this.#flushCalls();
    events.push({
      type: "done",
      finishReason: this.#finishReason ?? "stop",
      usage: this.#usage ?? { promptTokens: 0, completionTokens: 0, cachedTokens: 0 },
    });
    return events;
  }

  #addToolFragments(fragments: unknown[]): void {
    for (const raw of fragments) {
      const fragment = asObject(raw);
      if (fragment === undefined) continue;
      const index = typeof fragment.index === "number" ? fragment.index : this.#open.size;
      const id = typeof fragment.id === "string" ? fragment.id : "";
      let call = this.#open.get(index);
      // A new id under an index already in use is another call: SGLang has streamed parallel calls all at index 0.
      // Merged, the two became one call: the first name, the second id, both arguments run together (invalid JSON).
      if (call === undefined || (id.length > 0 && call.id.length > 0 && id !== call.id)) {
        call = { index, id: "", name: "", arguments: "" };
        this.#calls.push(call);
        this.#open.set(index, call);
      }
      if (id.length > 0) call.id = id;
      const fn = asObject(fragment.function);
      if (fn !== undefined) {
        // The name comes once, in the first fragment; some servers repeat it, so it is not appended.
        if (typeof fn.name === "string" && fn.name.length > 0 && call.name === "") call.name = fn.name;
        if (typeof fn.arguments === "string") call.arguments += fn.arguments;
      }
    }
  }

  #flushCalls(): ChatStreamEvent[] {
    if (this.#callsEmitted || this.#calls.length === 0) return [];
    this.#callsEmitted = true;
    // By index; calls that shared one keep the order they opened in (the sort is stable).
    const ordered = [...this.#calls].sort((a, b) => a.index - b.index);
    return ordered.map((call): ChatStreamEvent => {
      const complete: ChatToolCall = {
        id: call.id || `call_${call.index}`,
        name: call.name,
        arguments: call.arguments,
      };
      return { type: "tool-call", call: unwrapTgiToolEnvelope(complete) };
    });
  }
}
