/**
 * What code handling text shares. The CBOR and protobuf writers: a short pure-ASCII string (the common case for keys,
 * ids and metric names) has as many bytes as characters and is copied char by char without the UTF-8 encoder;
 * anything else must be well-formed UTF-16 (no lone surrogate, which UTF-8 cannot carry) before it is encoded. Readers
 * of JSON text (the operator API's bodies, the config file): a leading byte order mark is skipped.
 */

/** Strings at least this long skip the ASCII scan and go straight to the encoder. */
const ASCII_SCAN_MAX_CHARS = 64;

/** True when `s` is shorter than the scan limit and every char is ASCII (so its UTF-8 byte length is `s.length`). */
export function isShortAscii(s: string): boolean {
  const n = s.length;
  if (n >= ASCII_SCAN_MAX_CHARS) return false;
  for (let i = 0; i < n; i++) {
    if (s.charCodeAt(i) > 0x7f) return false;
  }
  return true;
}

/** False when `s` holds a lone surrogate. */
export function isWellFormedText(s: string): boolean {
  return (s as string & { isWellFormed(): boolean }).isWellFormed();
}

/**
 * `text` without a leading byte order mark (U+FEFF as it reads once decoded from UTF-8). Windows tools write one
 * (Notepad, PowerShell's UTF-8 files, sent with `curl -d @file`); RFC 8259 8.1 lets a JSON parser ignore it.
 */
export function withoutByteOrderMark(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}
