/**
 * The one base class for every fault the bridge raises or returns. Each error carries a stable `code`
 * (listed in docs/errors.md) so callers branch on codes, never on message text, and keeps its `cause`.
 *
 * @example
 * throw new BridgeError("BRIDGE_ERR_CONFIG", "mqtt.port must be an integer from 0 to 65535", { field: "mqtt.port" });
 */
export class BridgeError extends Error {
  readonly code: string;
  /** Extra machine-readable facts about the failure (a field name, a current version, a limit). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "BridgeError";
    this.code = code;
    this.details = details;
  }

  toJSON(): { code: string; message: string; details: Readonly<Record<string, unknown>> } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/** True when `err` or anything in its `cause` chain is a BridgeError with one of `codes`. */
export function hasErrorCode(err: unknown, ...codes: string[]): boolean {
  const seen = new Set<unknown>();
  let current: unknown = err;
  while (current !== undefined && current !== null && !seen.has(current)) {
    seen.add(current);
    if (current instanceof BridgeError && codes.includes(current.code)) return true;
    current = current instanceof Error ? current.cause : undefined;
  }
  return false;
}
