/**
 * Cutting text without splitting a character, to a length in UTF-16 code units (JavaScript's `length`) or in UTF-8
 * bytes: a cut between the two halves of a surrogate pair (an emoji) leaves a lone surrogate, which no codec can
 * write to a device (UTF-8 cannot carry it), SQLite stores as U+FFFD, and an engine's JSON parser refuses.
 */

/** `text` cut to at most `max` UTF-16 code units, never between the halves of a surrogate pair. */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  const last = text.charCodeAt(max - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}

/** Cuts `text` to at most `maxBytes` UTF-8 bytes without splitting a character. */
export function truncateUtf8(text: string, maxBytes: number): { text: string; cut: boolean } {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.byteLength <= maxBytes) return { text, cut: false };
  return { text: bytes.subarray(0, headEnd(bytes, Math.max(0, maxBytes))).toString("utf8"), cut: true };
}

/** A byte that continues a UTF-8 character rather than starting one (past the end counts as a start). */
function continuesCharacter(bytes: Buffer, at: number): boolean {
  return at < bytes.length && (bytes[at] & 0xc0) === 0x80;
}

/** The end of the longest head of `bytes` within `maxBytes` that splits no character. */
function headEnd(bytes: Buffer, maxBytes: number): number {
  let end = maxBytes;
  while (end > 0 && continuesCharacter(bytes, end)) end--;
  return end;
}

/**
 * The longest prefix of `text`, cut on a UTF-8 character boundary, for which `fits` holds ("" when none does).
 * `fits` must hold for every shorter prefix of one it holds for (an encoded size grows with the text), so a binary
 * search over the byte length finds it.
 */
export function longestPrefixWhere(text: string, fits: (candidate: string) => boolean): string {
  if (fits(text)) return text;
  let lo = 0;
  let hi = Buffer.byteLength(text, "utf8") - 1;
  let best = "";
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const candidate = truncateUtf8(text, mid).text;
    if (fits(candidate)) {
      best = candidate.length > best.length ? candidate : best;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return best;
}

/** What stands where the middle of a text was cut (U+2026, one character, three UTF-8 bytes). */
export const ELLIPSIS = "\u2026";

/**
 * The longest `head…tail` form of `text` (its beginning and its end around one ELLIPSIS, each cut on a UTF-8
 * character boundary, together at most the text less one character) for which `fits` holds; "" when none holding at
 * least one character of `text` does. Where a message names the place first and the rule last (`a.b: duplicate map
 * key`, `... at byte 9`), a prefix alone loses the rule whenever the place is long. The head and tail get half the
 * bytes each (the tail the odd one); a character or two that the boundaries left unused goes to the tail, then the
 * head. `fits` must hold for every form kept inside one it holds for (an encoded size grows with the text), so a
 * binary search over the kept byte count finds it: O(log n) calls, as for a prefix.
 */
export function longestHeadTailWhere(text: string, fits: (candidate: string) => boolean): string {
  if (fits(text)) return text;
  const bytes = Buffer.from(text, "utf8");
  const tailStart = (maxBytes: number): number => {
    let start = bytes.length - maxBytes;
    while (continuesCharacter(bytes, start)) start++;
    return start;
  };
  const form = (end: number, start: number): string =>
    bytes.toString("utf8", 0, end) + ELLIPSIS + bytes.toString("utf8", start);
  let lo = 1;
  let hi = bytes.length - 1;
  let end = 0;
  let start = bytes.length;
  while (lo <= hi) {
    const kept = (lo + hi) >>> 1;
    const half = kept >>> 1;
    const candidateEnd = headEnd(bytes, half);
    const candidateStart = tailStart(kept - half);
    if (fits(form(candidateEnd, candidateStart))) {
      end = candidateEnd;
      start = candidateStart;
      lo = kept + 1;
    } else {
      hi = kept - 1;
    }
  }
  if (end === 0 && start === bytes.length) return "";
  // The boundaries may have left a few bytes unused: one more whole character at the tail, then at the head.
  for (;;) {
    let previous = start - 1;
    while (previous > end && continuesCharacter(bytes, previous)) previous--;
    if (previous <= end || !fits(form(end, previous))) break;
    start = previous;
  }
  for (;;) {
    let next = end + 1;
    while (next < start && continuesCharacter(bytes, next)) next++;
    if (next >= start || !fits(form(next, start))) break;
    end = next;
  }
  return form(end, start);
}
