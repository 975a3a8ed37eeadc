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
  let end = Math.max(0, maxBytes);
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return { text: bytes.subarray(0, end).toString("utf8"), cut: true };
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
