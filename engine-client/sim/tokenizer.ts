/**
 * A deterministic stand-in for a tokenizer. The prompt is rendered with a Llama-3-like chat template and cut
 * into 4-character pieces, each piece one token (id = its hash). Real tokenizers average about 4 characters
 * per English token, and fixed-width pieces keep the property the prefix cache needs: two prompts that share
 * their first N characters share their first floor(N/4) tokens.
 */
import { hash32 } from "../affinity.ts";

export const CHARS_PER_TOKEN = 4;

/** The message shapes the simulator reads from a request body (already validated). */
export interface SimMessage {
  role: string;
  content: string;
  toolCalls?: string;
}

/** Renders messages (and tool definitions, which real templates put first) as the prompt text. */
export function renderPrompt(messages: readonly SimMessage[], toolsJson: string | undefined): string {
  let text = "<|begin_of_text|>";
  if (toolsJson !== undefined) text += `<|start_header_id|>tools<|end_header_id|>\n\n${toolsJson}<|eot_id|>`;
  for (const message of messages) {
    text += `<|start_header_id|>${message.role}<|end_header_id|>\n\n${message.content}`;
    if (message.toolCalls !== undefined) text += message.toolCalls;
    text += "<|eot_id|>";
  }
  return `${text}<|start_header_id|>assistant<|end_header_id|>\n\n`;
}

/** Token ids of `text`. */
export function tokenize(text: string): number[] {
  const tokens: number[] = [];
  for (let i = 0; i < text.length; i += CHARS_PER_TOKEN) tokens.push(hash32(text.slice(i, i + CHARS_PER_TOKEN)));
  return tokens;
}

/** Splits generated text into token-sized pieces (used for JSON and tool arguments). */
export function splitPieces(text: string): string[] {
  const pieces: string[] = [];
  for (let i = 0; i < text.length; i += CHARS_PER_TOKEN) pieces.push(text.slice(i, i + CHARS_PER_TOKEN));
  return pieces;
}
