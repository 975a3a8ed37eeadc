/**
 * The size budget of one turn's tool outputs. The history has its own (maxHistoryChars), but a turn whose tools return
 * large outputs over several rounds grows its own prompt: every round carries every output so far. Each output is
 * cut to `maxOutputChars` and all of a turn's outputs together to `maxTurnChars`, head and tail kept with a note in
 * the text (as the conversation's row-size guard does), so the model knows what it did not see and can ask for less.
 * Once the turn's budget is spent, an output is replaced by a note alone.
 */
import { compactText } from "./compact.ts";

/** DeviceAgent options `maxToolOutputChars` and `maxTurnToolOutputChars`. */
export interface ToolOutputBudget {
  /** Longest one tool output the model sees, characters. */
  maxOutputChars: number;
  /** Most characters of tool output in one turn, all rounds together. */
  maxTurnChars: number;
}

/**
 * Below this many characters left in the turn's budget an output is not cut to fit but left out with a note: a
 * head and tail that short would tell the model nothing. The smallest accepted `maxToolOutputChars` as well.
 */
export const MIN_TOOL_OUTPUT_CHARS = 256;

/**
 * The text the model sees for `output`, when the turn's earlier tool outputs hold `usedChars` characters. At most
 * `maxOutputChars`, and within what is left of `maxTurnChars`, except the note that replaces an output once less
 * than MIN_TOOL_OUTPUT_CHARS is left (about 150 characters).
 */
export function fitToolOutput(
  output: string,
  usedChars: number,
  budget: ToolOutputBudget,
): { text: string; compacted: boolean } {
  const left = budget.maxTurnChars - usedChars;
  const max = Math.min(budget.maxOutputChars, left);
  if (output.length <= max) return { text: output, compacted: false };
  if (left < MIN_TOOL_OUTPUT_CHARS) {
    const text = `[left out: the tool output was ${output.length} characters, and this question's tool outputs have used their budget of ${budget.maxTurnChars}]`;
    return { text, compacted: true };
  }
  return compactText(output, max, "the tool output");
}
