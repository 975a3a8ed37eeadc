import type { DecodeErrorCode, DecodeResult } from "../codec.ts";

/** Why and where a text is not JSON: the parser's own words, and the offset (in UTF-16 code units) it stopped at. */
export interface JsonSyntaxDetail {
  /** `unexpected "}"`, `unexpected end`, `trailing characters`, ... */
  readonly problem: string;
  readonly position: number;
}

/**
 * A JSON syntax error in the words every message about one uses, whatever names the text (`payload is not JSON: `,
 * the API's `body is not valid JSON: `).
 *
 * @example
 * describeJsonSyntax({ problem: 'unexpected "}"', position: 14 }); // 'unexpected "}" at position 14'
 */
export function describeJsonSyntax(detail: JsonSyntaxDetail): string {
  return `${detail.problem} at position ${detail.position}`;
}

/**
 * Thrown inside a decoder and caught at the codec boundary, where it becomes a `{ ok: false }` value. Decoders are
 * recursive, and unwinding by exception keeps every level free of result plumbing; it never escapes a codec.
 * The strict JSON parser (json-parse.ts) is also called directly, by the operator API's body parser and the
 * WebSocket protocol, which word a fault as their own: they build it from `syntax`, or from `field` and `problem`,
 * never from `message`.
 */
export class DecodeFault extends Error {
  readonly code: DecodeErrorCode;
  readonly field: string | undefined;
  /** Set for a JSON syntax error (code BRIDGE_ERR_FRAME_DECODE from the strict JSON parser); undefined otherwise. */
  readonly syntax: JsonSyntaxDetail | undefined;
  /**
   * What is wrong, without the path: for a fault at a field (fieldFault) the message less its `a[0].b: ` or `frame: `,
   * otherwise the message itself, which names no path.
   */
  readonly problem: string;

  constructor(
    code: DecodeErrorCode,
    message: string,
    field?: string,
    detail?: { syntax?: JsonSyntaxDetail; problem?: string },
  ) {
    super(message);
    this.name = "DecodeFault";
    this.code = code;
    this.field = field;
    this.syntax = detail?.syntax;
    this.problem = detail?.problem ?? message;
  }
}

/** The problem of a map (object) holding one key twice, in every codec: JSON.parse would keep the last silently. */
export const DUPLICATE_MAP_KEY = "duplicate map key";

/**
 * A fault at `field` (undefined at the top of the frame), its message naming the path first as every codec words it.
 *
 * @example
 * fieldFault("BRIDGE_ERR_FRAME_INVALID", "a[0].b", "duplicate map key").message; // "a[0].b: duplicate map key"
 * fieldFault("BRIDGE_ERR_FRAME_INVALID", undefined, "duplicate map key").message; // "frame: duplicate map key"
 */
export function fieldFault(code: DecodeErrorCode, field: string | undefined, problem: string): DecodeFault {
  return new DecodeFault(code, `${field ?? "frame"}: ${problem}`, field, { problem });
}

/** Turns anything thrown while decoding into a typed failure; a stack overflow is reported as too deep. */
export function toFailure(err: unknown): DecodeResult<never> {
  if (err instanceof DecodeFault) {
    return err.field === undefined
      ? { ok: false, code: err.code, message: err.message }
      : { ok: false, code: err.code, message: err.message, field: err.field };
  }
  if (err instanceof RangeError && /call stack/i.test(err.message)) {
    return { ok: false, code: "BRIDGE_ERR_FRAME_TOO_DEEP", message: "frame nesting exhausted the decoder" };
  }
  const detail = err instanceof Error ? err.message : String(err);
  return { ok: false, code: "BRIDGE_ERR_FRAME_DECODE", message: `malformed frame: ${detail}` };
}

/** Joins a field path for error messages: `r.temp`, `a[2]`. */
export function joinPath(parent: string, key: string | number): string {
  if (typeof key === "number") return `${parent}[${key}]`;
  return parent === "" ? key : `${parent}.${key}`;
}
