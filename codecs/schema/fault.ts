import type { DecodeErrorCode, DecodeResult } from "../codec.ts";

/**
 * Thrown inside a decoder and caught at the codec boundary, where it becomes a `{ ok: false }` value. Decoders are
 * recursive, and unwinding by exception keeps every level free of result plumbing; it never escapes a codec.
 */
export class DecodeFault extends Error {
  readonly code: DecodeErrorCode;
  readonly field: string | undefined;

  constructor(code: DecodeErrorCode, message: string, field?: string) {
    super(message);
    this.name = "DecodeFault";
    this.code = code;
    this.field = field;
  }
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
