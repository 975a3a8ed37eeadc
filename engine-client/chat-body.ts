/**
 * The JSON text of a chat completion request. A device agent sends the same frozen tool list with every request
 * (agents/device/reasoning/tools.ts), and its JSON is about half of a short request's body: it is made once per list
 * and spliced in where `buildChatBody` puts it, so the text is the same as `JSON.stringify(buildChatBody(...))`.
 */
import type { ChatRequest, ChatTool } from "../agents/engine.ts";
import { ENGINE_ERROR_CODES, engineError } from "./errors.ts";
import { buildChatBody, wireTools } from "./wire.ts";

/** The JSON of each frozen tool list seen, by identity. */
const textOfFrozenTools = new WeakMap<readonly ChatTool[], string>();

/**
 * The JSON text of one request body. A request that cannot be encoded (a value JSON cannot hold, a cycle, a shape
 * validateCall does not look into) is the caller's fault: BAD_REQUEST, never a retryable UNAVAILABLE.
 */
export function encodeChatBody(request: ChatRequest, model: string | undefined, stream: boolean): string {
  try {
    const toolsText = request.tools === undefined ? undefined : frozenToolsText(request.tools);
    if (toolsText === undefined) return JSON.stringify(buildChatBody(request, model, stream));
    // buildChatBody's keys in its order: messages, model, tools, then the rest.
    const { messages, model: named, ...rest } = buildChatBody({ ...request, tools: undefined }, model, stream);
    let text = `{"messages":${JSON.stringify(messages)}`;
    if (named !== undefined) text += `,"model":${JSON.stringify(named)}`;
    text += `,"tools":${toolsText}`;
    const restText = JSON.stringify(rest);
    return restText === "{}" ? `${text}}` : `${text},${restText.slice(1)}`;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw engineError(ENGINE_ERROR_CODES.badRequest, `the request could not be encoded: ${reason}`, {}, err);
  }
}

/**
 * The JSON of a tool list that can never change (the array and everything in it frozen), made once per list; undefined
 * for any other list. Only a list seen for the first time is walked: what is frozen stays frozen.
 */
function frozenToolsText(tools: readonly ChatTool[]): string | undefined {
  const known = textOfFrozenTools.get(tools);
  if (known !== undefined || tools.length === 0 || !deepFrozen(tools)) return known;
  const text = JSON.stringify(wireTools(tools));
  textOfFrozenTools.set(tools, text);
  return text;
}

function deepFrozen(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return true;
  if (!Object.isFrozen(value)) return false;
  for (const inner of Object.values(value)) if (!deepFrozen(inner)) return false;
  return true;
}
