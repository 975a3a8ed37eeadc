/**
 * Cutting text to a length in UTF-16 code units (JavaScript's `length`) without splitting a character: a cut
 * between the two halves of a surrogate pair (an emoji) leaves a lone surrogate, which no codec can write to a
 * device (UTF-8 cannot carry it), SQLite stores as U+FFFD, and an engine's JSON parser refuses.
 */

/** `text` cut to at most `max` UTF-16 code units, never between the halves of a surrogate pair. */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  const last = text.charCodeAt(max - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}
