/**
 * The row-size guard of the conversation: an oversized message or tool output keeps its head and tail and says,
 * in the text itself, how much was cut. Nothing is dropped silently and the write never fails for size.
 */

/** Shortens `text` to at most `maxChars` characters (the note included) when it is longer. */
export function compactText(text: string, maxChars: number, what: string): { text: string; compacted: boolean } {
  if (text.length <= maxChars) return { text, compacted: false };
  const note = `\n[compacted: ${what} was ${text.length} characters; ${"N"} from the middle were cut]\n`;
  const budget = Math.max(0, maxChars - note.length - 16);
  let head = Math.ceil(budget * 0.75);
  let tail = budget - head;
  // Never between the two halves of a surrogate pair (an emoji): a lone half is no character, SQLite stores U+FFFD
  // for it and an engine's JSON parser hands its tokenizer a string it refuses.
  if (isHighSurrogate(text.charCodeAt(head - 1))) head--;
  if (tail > 0 && isLowSurrogate(text.charCodeAt(text.length - tail))) tail--;
  const cut = text.length - head - tail;
  const finalNote = note.replace("N", String(cut));
  return { text: text.slice(0, head) + finalNote + (tail > 0 ? text.slice(text.length - tail) : ""), compacted: true };
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}
