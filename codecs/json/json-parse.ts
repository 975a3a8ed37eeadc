/**
 * A strict RFC 8259 parser for device JSON, used instead of `JSON.parse` for two things it cannot do on Node 20:
 *
 * - integers beyond ±(2^53-1) keep their exact value: an integer token (no fraction, no exponent) that is not a safe
 *   integer becomes a `bigint`, as the same integer does in CBOR and protobuf (`JSON.parse` rounds it to a float,
 *   silently; the reviver's `context.source` that would expose the token is Node 21+);
 * - duplicate keys in an object are refused (`BRIDGE_ERR_FRAME_INVALID`, naming the key's path), as CBOR and protobuf
 *   refuse them, instead of the last one winning.
 *
 * `__proto__` keys are refused here too, before they could be assigned. Nesting is bounded, so the recursion is:
 * `maxNesting` counts objects and arrays, the frame being 1. Numbers with a fraction or an exponent stay floats, and
 * escapes in strings are decoded by `JSON.parse` itself once this parser has checked the literal. Throws `DecodeFault`.
 *
 * Text is well-formed Unicode, as in CBOR and protobuf: a `\u` escape of a lone surrogate (`"\ud800"`, which
 * `JSON.parse` takes and UTF-8 cannot carry) is refused with `BRIDGE_ERR_FRAME_INVALID` naming its path, in a value
 * or a key. Only strings with escapes are checked (the slow path): the input must be text decoded from UTF-8, which
 * holds no lone surrogate of its own, so every caller decodes strictly first (the JSON codec and the API's body
 * parser with a fatal decoder, the ws library for WebSocket text) and plain strings cost no extra scan.
 */
import { DecodeFault, DUPLICATE_MAP_KEY, describeJsonSyntax, fieldFault } from "../schema/fault.ts";
import { PathStack } from "../schema/path.ts";
import { checkKey, MAX_INTEGER_DIGITS, normalizeBigInt } from "../schema/value.ts";
import { isWellFormedText } from "../text-utf8.ts";

/** Most digits of an integer token: the bound of every codec, as of `{"$bigint": ...}` text (schema/value.ts). */
export { MAX_INTEGER_DIGITS };

const HEX4 = /^[0-9a-fA-F]{4}$/;
/** What the fast path of parseString leaves to the character loop: escapes and (refused) control characters. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this looks for (RFC 8259 7).
const SLOW_STRING = /[\\\u0000-\u001f]/;

let text = "";
let pos = 0;
let maxNesting = 16;
const path = new PathStack();

function here(): string | undefined {
  const p = path.toString();
  return p === "" ? undefined : p;
}

function syntax(problem: string): DecodeFault {
  const detail = { problem, position: pos };
  return new DecodeFault("BRIDGE_ERR_FRAME_DECODE", `payload is not JSON: ${describeJsonSyntax(detail)}`, undefined, {
    syntax: detail,
  });
}

function invalid(message: string): DecodeFault {
  return fieldFault("BRIDGE_ERR_FRAME_INVALID", here(), message);
}

function skipSpace(): void {
  for (;;) {
    const c = text.charCodeAt(pos);
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) pos++;
    else return;
  }
}

function unexpected(): DecodeFault {
  return pos >= text.length ? syntax("unexpected end") : syntax(`unexpected ${JSON.stringify(text[pos])}`);
}

/** Matches a lone surrogate only: with the `u` flag a well-formed pair is one code point, outside this class. */
const LONE_SURROGATE = /[\ud800-\udfff]/u;
const LONE_SURROGATES = /[\ud800-\udfff]/gu;

/** `s` with each lone surrogate written as its `\u` escape, so an error message naming it is well-formed text. */
function escapeLoneSurrogates(s: string): string {
  return s.replace(LONE_SURROGATES, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

/** Refuses a decoded string holding a lone surrogate; a key is named by its own path, with the surrogate escaped. */
function checkDecoded(decoded: string, isKey: boolean): void {
  if (isWellFormedText(decoded)) return;
  const shown = escapeLoneSurrogates((LONE_SURROGATE.exec(decoded) as RegExpExecArray)[0]);
  if (isKey) path.push(escapeLoneSurrogates(decoded));
  throw invalid(`${isKey ? "a key" : "text"} holds a lone surrogate ${shown}, which UTF-8 cannot carry`);
}

function parseString(isKey: boolean): string {
  // pos is at the opening quote. Fast path: a string without escapes or control characters, found natively.
  const close = text.indexOf('"', pos + 1);
  if (close !== -1) {
    const candidate = text.slice(pos + 1, close);
    if (!SLOW_STRING.test(candidate)) {
      pos = close + 1;
      return candidate;
    }
  }
  const start = pos;
  pos++;
  let escaped = false;
  for (;;) {
    if (pos >= text.length) throw syntax("unterminated string");
    const c = text.charCodeAt(pos);
    if (c === 0x22) break;
    if (c < 0x20) throw syntax("control character in a string");
    if (c === 0x5c) {
      escaped = true;
      const e = text[pos + 1];
      if (e === "u") {
        if (!HEX4.test(text.slice(pos + 2, pos + 6))) throw syntax("bad \\u escape");
        pos += 6;
        continue;
      }
      if (e === undefined || !'"\\/bfnrt'.includes(e)) throw syntax("bad escape");
      pos += 2;
      continue;
    }
    pos++;
  }
  pos++;
  if (!escaped) return text.slice(start + 1, pos - 1);
  // The literal is checked above, so JSON.parse only decodes its escapes; a lone surrogate among them is refused here.
  const decoded = JSON.parse(text.slice(start, pos)) as string;
  checkDecoded(decoded, isKey);
  return decoded;
}

function digitsFrom(at: number): number {
  let i = at;
  for (;;) {
    const c = text.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) i++;
    else return i;
  }
}

/** Scans a number token by hand (a sticky regex cost a match array per number on the hot path). */
function parseNumber(): number | bigint {
  const start = pos;
  let i = pos;
  if (text.charCodeAt(i) === 0x2d) i++;
  const first = text.charCodeAt(i);
  if (first === 0x30) i++;
  else if (first >= 0x31 && first <= 0x39) i = digitsFrom(i + 1);
  else throw unexpected();
  const intEnd = i;
  let integral = true;
  if (text.charCodeAt(i) === 0x2e) {
    const end = digitsFrom(i + 1);
    if (end === i + 1) {
      pos = i + 1;
      throw unexpected();
    }
    i = end;
    integral = false;
  }
  const e = text.charCodeAt(i);
  if (e === 0x65 || e === 0x45) {
    let j = i + 1;
    const sign = text.charCodeAt(j);
    if (sign === 0x2b || sign === 0x2d) j++;
    const end = digitsFrom(j);
    if (end === j) {
      pos = j;
      throw unexpected();
    }
    i = end;
    integral = false;
  }
  pos = i;
  const token = text.slice(start, i);
  const digits = intEnd - start - (text.charCodeAt(start) === 0x2d ? 1 : 0);
  // Up to 15 digits is always a safe integer; longer integer tokens are read exactly.
  if (!integral || digits <= 15) return Number(token);
  if (digits > MAX_INTEGER_DIGITS) throw invalid(`an integer of more than ${MAX_INTEGER_DIGITS} digits`);
  return normalizeBigInt(BigInt(token));
}

function parseValue(nesting: number): unknown {
  skipSpace();
  const c = text.charCodeAt(pos);
  switch (c) {
    case 0x7b: // {
      return parseObject(nesting + 1);
    case 0x5b: // [
      return parseArray(nesting + 1);
    case 0x22: // "
      return parseString(false);
    case 0x74: // t
      return literal("true", true);
    case 0x66: // f
      return literal("false", false);
    case 0x6e: // n
      return literal("null", null);
    default:
      if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return parseNumber();
      throw unexpected();
  }
}

function literal<T>(word: string, value: T): T {
  if (!text.startsWith(word, pos)) throw unexpected();
  pos += word.length;
  return value;
}

function enter(nesting: number): void {
  if (nesting > maxNesting) {
    throw fieldFault("BRIDGE_ERR_FRAME_TOO_DEEP", here(), "nested deeper than the decoder allows");
  }
}

function parseObject(nesting: number): Record<string, unknown> {
  enter(nesting);
  pos++;
  const out: Record<string, unknown> = {};
  skipSpace();
  if (text.charCodeAt(pos) === 0x7d) {
    pos++;
    return out;
  }
  for (;;) {
    skipSpace();
    if (text.charCodeAt(pos) !== 0x22) throw unexpected();
    const key = parseString(true);
    path.push(key);
    // The path text is built only for the refusal (building it per key cost a string per map entry).
    if (key === "__proto__") checkKey(key, path.toString());
    if (Object.hasOwn(out, key)) throw invalid(DUPLICATE_MAP_KEY);
    skipSpace();
    if (text.charCodeAt(pos) !== 0x3a) throw unexpected();
    pos++;
    out[key] = parseValue(nesting);
    path.pop();
    skipSpace();
    const c = text.charCodeAt(pos);
    pos++;
    if (c === 0x7d) return out;
    if (c !== 0x2c) {
      pos--;
      throw unexpected();
    }
  }
}

function parseArray(nesting: number): unknown[] {
  enter(nesting);
  pos++;
  const out: unknown[] = [];
  skipSpace();
  if (text.charCodeAt(pos) === 0x5d) {
    pos++;
    return out;
  }
  for (;;) {
    path.push(out.length);
    out.push(parseValue(nesting));
    path.pop();
    skipSpace();
    const c = text.charCodeAt(pos);
    pos++;
    if (c === 0x5d) return out;
    if (c !== 0x2c) {
      pos--;
      throw unexpected();
    }
  }
}

/**
 * Parses one JSON text. `nestingLimit` bounds objects and arrays (the outermost is 1); callers pass room for the
 * `{"$map": ...}` escapes of json-value.ts and check the exact depth of Values there.
 */
export function parseJson(input: string, nestingLimit: number): unknown {
  text = input;
  pos = 0;
  maxNesting = nestingLimit;
  path.reset();
  try {
    const value = parseValue(0);
    skipSpace();
    if (pos < text.length) throw syntax("trailing characters");
    return value;
  } finally {
    text = "";
  }
}
