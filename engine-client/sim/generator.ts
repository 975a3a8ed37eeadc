/**
 * Decides what the simulated model answers, deterministically: the same prompt always gets the same tokens,
 * whatever the batch, the timing or the replica. Three kinds of answer:
 * - a tool call, when the request offers tools and the rule below picks one;
 * - JSON matching the schema, when `response_format` is `json_schema`;
 * - otherwise text: seeded words, 8 to 64 tokens long (configurable), cut by `max_tokens`.
 *
 * Tool rule (documented in docs/engine.md so tests can trigger it): with `tool_choice` "none" never; with
 * `tool_choice` naming a function, that one; otherwise, when the last message is the user's and names a tool
 * (as a whole word), the first such tool in the request's `tools` order, or the first tool at all when
 * `tool_choice` is "required". Arguments: the first `{...}` JSON object in the user's message when there is
 * one, else values generated from the tool's parameter schema.
 */
import { hash32 } from "../affinity.ts";
import { CHARS_PER_TOKEN, splitPieces } from "./tokenizer.ts";

/** One output token. */
export type Piece =
  | { type: "text"; text: string }
  | { type: "tool-start"; id: string; name: string }
  | { type: "tool-args"; text: string };

export interface SimTool {
  name: string;
  parameters: unknown;
}

export interface GenerationInput {
  prompt: string;
  model: string;
  /**
   * Which of a request's `n` choices this is (default 0). Each choice is seeded apart, as parallel samples differ;
   * choice 0 keeps the seed of a request with `n: 1`, so adding choices never changes the first.
   */
  choice?: number;
  lastRole: string;
  lastContent: string;
  tools: SimTool[];
  toolChoice: unknown;
  jsonSchema: unknown;
  maxTokens: number;
  ignoreEos: boolean;
  minOutputTokens: number;
  maxOutputTokens: number;
}

export interface GenerationPlan {
  pieces: Piece[];
  finishReason: "stop" | "length" | "tool_calls";
}

const WORDS = (
  "the device reports a stable reading and the agent suggests checking the sensor again later " +
  "temperature humidity pressure battery signal firmware update schedule valve pump motor light " +
  "within normal range slightly above expected below threshold no action needed consider calibrating " +
  "next cycle overnight morning value trend rising falling steady alert cleared"
).split(" ");

/** mulberry32: a tiny, good-enough PRNG for deterministic sampling. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function planGeneration(input: GenerationInput): GenerationPlan {
  const key = `${input.model}\u0000${input.prompt}`;
  const seed = hash32(input.choice ? `${key}\u0000${input.choice}` : key);
  const random = seededRandom(seed);
  const tool = pickTool(input);
  if (tool !== undefined) {
    const args = toolArguments(tool, input.lastContent, random, valueBudget(input.maxTokens));
    const pieces: Piece[] = [
      { type: "tool-start", id: `chatcmpl-tool-${seed.toString(16)}`, name: tool.name },
      ...splitPieces(args).map((text): Piece => ({ type: "tool-args", text })),
    ];
    return cut(pieces, input.maxTokens, "tool_calls");
  }
  if (input.jsonSchema !== undefined) {
    const text = JSON.stringify(sampleSchema(input.jsonSchema, random, 0, valueBudget(input.maxTokens)));
    return cut(
      splitPieces(text).map((t): Piece => ({ type: "text", text: t })),
      input.maxTokens,
      "stop",
    );
  }
  const natural = input.ignoreEos
    ? input.maxTokens
    : input.minOutputTokens + (seed % (input.maxOutputTokens - input.minOutputTokens + 1));
  const pieces: Piece[] = [];
  let sentence = 0;
  for (let i = 0; i < Math.min(natural, input.maxTokens); i++) {
    let word = WORDS[Math.floor(random() * WORDS.length)];
    if (sentence === 0) word = word[0].toUpperCase() + word.slice(1);
    sentence++;
    const last = i === natural - 1;
    if (last || (sentence > 6 && random() < 0.2)) {
      word += ".";
      sentence = 0;
    }
    pieces.push({ type: "text", text: i === 0 ? word : ` ${word}` });
  }
  // With ignore_eos the answer never ends on its own: vLLM stops it at max_tokens and says so.
  return { pieces, finishReason: input.ignoreEos || natural > input.maxTokens ? "length" : "stop" };
}

function cut(pieces: Piece[], maxTokens: number, finish: "stop" | "tool_calls"): GenerationPlan {
  if (pieces.length <= maxTokens) return { pieces, finishReason: finish };
  return { pieces: pieces.slice(0, maxTokens), finishReason: "length" };
}

function pickTool(input: GenerationInput): SimTool | undefined {
  if (input.tools.length === 0 || input.toolChoice === "none") return undefined;
  const choice = input.toolChoice;
  if (typeof choice === "object" && choice !== null) {
    const fn = (choice as { function?: { name?: unknown } }).function;
    const named = input.tools.find((t) => t.name === fn?.name);
    if (named !== undefined) return named;
  }
  if (input.lastRole !== "user") return undefined;
  const mentioned = input.tools.find((t) =>
    new RegExp(`(^|[^A-Za-z0-9_])${escapeRegExp(t.name)}($|[^A-Za-z0-9_])`).test(input.lastContent),
  );
  if (mentioned !== undefined) return mentioned;
  return choice === "required" ? input.tools[0] : undefined;
}

function toolArguments(tool: SimTool, content: string, random: () => number, budget: ValueBudget): string {
  const start = content.indexOf("{");
  const end = content.lastIndexOf("}");
  if (start !== -1 && end > start) {
    try {
      const parsed: unknown = JSON.parse(content.slice(start, end + 1));
      if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) return JSON.stringify(parsed);
    } catch {
      // Not JSON: fall back to values from the schema.
    }
  }
  return JSON.stringify(sampleSchema(tool.parameters ?? { type: "object" }, random, 0, budget));
}

/** How many more JSON values a sampled answer may hold. */
export interface ValueBudget {
  left: number;
}

/**
 * Enough values for any answer `maxTokens` can carry: each value is at least one character, so past this many the
 * text already runs beyond the cut and stopping there changes nothing that is sent. Without it a schema vLLM serves
 * (`minItems: 1e9`, nested arrays) made the simulator build the whole value: a blocked event loop or a crash.
 */
function valueBudget(maxTokens: number): ValueBudget {
  return { left: maxTokens * CHARS_PER_TOKEN + 1 };
}

/** A value that satisfies the common JSON Schema keywords (type, properties, items, enum, const, bounds). */
export function sampleSchema(schema: unknown, random: () => number, depth: number, budget: ValueBudget): unknown {
  // Counted before anything else: an array of items with no schema still fills with nulls that use it up.
  budget.left--;
  if (typeof schema !== "object" || schema === null || depth > 8) return null;
  const s = schema as Record<string, unknown>;
  if ("const" in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0];
  let type = s.type;
  if (Array.isArray(type)) type = type.find((t) => t !== "null") ?? "null";
  if (type === undefined && typeof s.properties === "object") type = "object";
  switch (type) {
    case "object": {
      const out: Record<string, unknown> = {};
      const properties = (typeof s.properties === "object" && s.properties !== null ? s.properties : {}) as Record<
        string,
        unknown
      >;
      for (const [key, sub] of Object.entries(properties)) out[key] = sampleSchema(sub, random, depth + 1, budget);
      return out;
    }
    case "array": {
      const count = typeof s.minItems === "number" ? Math.max(1, s.minItems) : 1;
      const items: unknown[] = [];
      while (items.length < count && budget.left > 0) items.push(sampleSchema(s.items, random, depth + 1, budget));
      return items;
    }
    case "string":
      return `sim-${WORDS[Math.floor(random() * WORDS.length)]}`;
    case "integer":
    case "number": {
      const min = typeof s.minimum === "number" ? s.minimum : 0;
      const max = typeof s.maximum === "number" ? s.maximum : min + 100;
      const value = min + random() * (max - min);
      return type === "integer" ? Math.min(max, Math.ceil(value)) : Math.round(value * 100) / 100;
    }
    case "boolean":
      return random() < 0.5;
    default:
      return null;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
