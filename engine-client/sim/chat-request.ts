/**
 * Reads and validates a `/v1/chat/completions` body the way vLLM does (400 for a malformed request, 404 for
 * an unknown model), into what the generator and the scheduler need.
 */
import type { SimTool } from "./generator.ts";
import type { SimMessage } from "./tokenizer.ts";

export interface SimChatRequest {
  model: string;
  messages: SimMessage[];
  tools: SimTool[];
  /** The tools as JSON, rendered into the prompt like a chat template does. */
  toolsJson: string | undefined;
  toolChoice: unknown;
  /** The schema of `response_format: {type: "json_schema"}`, or `{type:"object"}` for `json_object`. */
  jsonSchema: unknown;
  maxTokens: number | undefined;
  /** Choices to generate (`n`), each its own sequence in the engine, as vLLM's parallel sampling. */
  n: number;
  ignoreEos: boolean;
  stream: boolean;
  includeUsage: boolean;
}

export type ParseOutcome =
  | { ok: true; request: SimChatRequest }
  | { ok: false; status: 400 | 404; type: string; message: string };

const ROLES = new Set(["system", "developer", "user", "assistant", "tool"]);

function bad(message: string): ParseOutcome {
  return { ok: false, status: 400, type: "BadRequestError", message };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Python's truthiness, for the checks vLLM makes with `if data.get(...)`. */
function isTruthy(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0;
  if (isObject(value)) return Object.keys(value).length > 0;
  return Boolean(value);
}

/** Text of a message `content`: a string, null, or an array of `{type:"text", text}` parts. */
function contentText(content: unknown): string | undefined {
  if (content === null || content === undefined) return "";
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return undefined;
  let text = "";
  for (const part of content) {
    if (!isObject(part) || part.type !== "text" || typeof part.text !== "string") return undefined;
    text += part.text;
  }
  return text;
}

export function parseChatRequest(raw: unknown, servedModel: string): ParseOutcome {
  if (!isObject(raw)) return bad("request body must be a JSON object");
  if (raw.model !== undefined && raw.model !== null && raw.model !== servedModel) {
    return {
      ok: false,
      status: 404,
      type: "NotFoundError",
      message: `The model \`${String(raw.model)}\` does not exist.`,
    };
  }
  if (!Array.isArray(raw.messages) || raw.messages.length === 0) return bad("messages must be a non-empty array");
  const messages: SimMessage[] = [];
  for (const [i, m] of raw.messages.entries()) {
    if (!isObject(m) || typeof m.role !== "string" || !ROLES.has(m.role)) return bad(`messages[${i}].role is invalid`);
    const content = contentText(m.content);
    if (content === undefined) return bad(`messages[${i}].content is invalid`);
    const message: SimMessage = { role: m.role, content };
    if (Array.isArray(m.tool_calls)) message.toolCalls = JSON.stringify(m.tool_calls);
    messages.push(message);
  }
  const tools: SimTool[] = [];
  if (raw.tools !== undefined && raw.tools !== null) {
    if (!Array.isArray(raw.tools)) return bad("tools must be an array");
    for (const [i, t] of raw.tools.entries()) {
      const fn = isObject(t) ? t.function : undefined;
      if (!isObject(t) || t.type !== "function" || !isObject(fn) || typeof fn.name !== "string") {
        return bad(`tools[${i}] must be {type: "function", function: {name, parameters}}`);
      }
      tools.push({ name: fn.name, parameters: fn.parameters });
    }
  }
  const toolChoiceError = checkToolChoice(raw.tool_choice, raw.tools, tools);
  if (toolChoiceError !== undefined) return bad(toolChoiceError);
  const format = responseFormatSchema(raw.response_format);
  if (typeof format === "string") return bad(format);
  const maxTokens = raw.max_completion_tokens ?? raw.max_tokens;
  if (maxTokens !== undefined && maxTokens !== null && (!Number.isInteger(maxTokens) || (maxTokens as number) < 1)) {
    return bad("max_tokens must be a positive integer");
  }
  const n = raw.n ?? 1;
  if (typeof n !== "number" || !Number.isInteger(n)) return bad("n: Input should be a valid integer");
  const nError = checkN(n, raw.temperature);
  if (nError !== undefined) return bad(nError);
  // vLLM's request validation refuses any stream_options on an answer that is not streamed (a truthy check, as there).
  if (isTruthy(raw.stream_options) && raw.stream !== true) {
    return bad("Stream options can only be defined when `stream=True`.");
  }
  const streamOptions = isObject(raw.stream_options) ? raw.stream_options : {};
  return {
    ok: true,
    request: {
      model: servedModel,
      messages,
      tools,
      toolsJson: tools.length > 0 ? JSON.stringify(raw.tools) : undefined,
      toolChoice: raw.tool_choice,
      jsonSchema: format.jsonSchema,
      maxTokens: typeof maxTokens === "number" ? maxTokens : undefined,
      n,
      ignoreEos: raw.ignore_eos === true,
      stream: raw.stream === true,
      includeUsage: streamOptions.include_usage === true,
    },
  };
}

/** Below this temperature vLLM samples greedily (its `_SAMPLING_EPS`). */
const GREEDY_TEMPERATURE = 1e-5;

/**
 * vLLM's SamplingParams checks of an integer `n`: at least 1, and 1 when sampling is greedy, since greedy choices
 * would all be the same. An absent `temperature` is 1 there, so it allows any `n`.
 */
function checkN(n: number, temperature: unknown): string | undefined {
  if (n < 1) return `n must be at least 1, got ${n}.`;
  if (n > 1 && typeof temperature === "number" && temperature < GREEDY_TEMPERATURE) {
    return `n must be 1 when using greedy sampling, got ${n}.`;
  }
  return undefined;
}

/**
 * The schema a `response_format` asks for (undefined for text), or why vLLM refuses it. vLLM reads `json_schema` into
 * a pydantic model whose `name` is a required string, so a schema without one is a 400 there even though the schema
 * itself is fine: accepting it here let a client that forgot the name pass every test and fail against vLLM.
 */
function responseFormatSchema(format: unknown): { jsonSchema: unknown } | string {
  if (!isObject(format)) return { jsonSchema: undefined };
  if (format.type === "json_object") return { jsonSchema: { type: "object" } };
  if (format.type === "text") return { jsonSchema: undefined };
  if (format.type !== "json_schema") return "response_format.type must be text, json_object or json_schema";
  const spec = format.json_schema;
  if (!isObject(spec) || !isObject(spec.schema)) return "response_format.json_schema.schema must be an object";
  // pydantic's words for a missing and for a mistyped required field.
  if (spec.name === undefined) return "response_format.json_schema.name: Field required";
  if (typeof spec.name !== "string") return "response_format.json_schema.name: Input should be a valid string";
  return { jsonSchema: spec.schema };
}

/**
 * vLLM's `check_tool_usage` request validation: a `tool_choice` other than "none" needs `tools`, must be "auto",
 * "required" or `{type: "function", function: {name}}`, and a name must be one of the tools offered. Without it a
 * request naming a tool the client forgot to send was answered here and refused by vLLM.
 */
function checkToolChoice(choice: unknown, rawTools: unknown, tools: readonly SimTool[]): string | undefined {
  if (choice === undefined || choice === null || choice === "none") return undefined;
  if (rawTools === undefined || rawTools === null) return "When using `tool_choice`, `tools` must be set.";
  if (choice === "auto" || choice === "required") return undefined;
  const fn = isObject(choice) ? choice.function : undefined;
  if (!isObject(fn) || typeof fn.name !== "string" || fn.name === "") {
    return 'tool_choice must be "none", "auto", "required" or {"type": "function", "function": {"name": "my_function"}}';
  }
  if (!tools.some((tool) => tool.name === fn.name)) {
    return "The tool specified in `tool_choice` does not match any of the specified `tools`";
  }
  return undefined;
}
