/**
 * Replaces secrets in an object about to be logged, at any depth. pino's own `redact` takes fixed paths (no recursive
 * wildcard), and a bounded set of `*.*.key` paths made every log line about ten times slower; this walk visits each
 * value once, copies only the branches that hold a secret and leaves the caller's object untouched. It censors what
 * JSON will print: an object with a `toJSON` method is printed as what that method returns, so that is what is walked.
 * A URL's user and password are censored as well, wherever it sits: an engine URL can carry them (`http://user:pw@h`).
 */

import { hasUrlCredentials, redactUrlCredentials } from "../engine-client/url-credentials.ts";

export const LOG_CENSOR = "[redacted]";

/** Key names (compared in lower case) whose values never reach a log line. */
export const SECRET_LOG_KEYS: ReadonlySet<string> = new Set([
  "authorization",
  "apikey",
  "api_key",
  "apitoken",
  "api_token",
  "token",
  "password",
  "secret",
]);

/**
 * Deeper than this the walk stops and the branch is logged as a marker: nothing the bridge logs comes near, and an
 * unbounded walk of a pathological object would overflow the stack inside a log call.
 */
export const MAX_REDACTION_DEPTH = 32;
const TOO_DEEP = "[redacted: nested too deep]";
const CIRCULAR = "[Circular]";

type Ancestors = unknown[];

/**
 * `record` with every secret in it censored; the same object when it holds none. Its own keys are walked, not its
 * `toJSON` form: pino prints a log object's (and a child logger's bindings') keys one by one.
 */
export function redactSecrets(record: Record<string, unknown>): Record<string, unknown> {
  try {
    return redactObject(record, []) as Record<string, unknown>;
  } catch (error) {
    return redactionFailed(error);
  }
}

/** A value pino prints whole with JSON (a `%j` argument, an object message), censored; itself when it holds none. */
export function redactSecretsInValue(value: unknown): unknown {
  try {
    return redactValue(value, "", []);
  } catch (error) {
    return redactionFailed(error);
  }
}

/**
 * A value a message interpolates (`%s`, `%j`, `%o`, `%O`), censored; itself when it holds none. pino prints `%s` with
 * `String()`, which no JSON form reaches, and the placeholder an argument fills is not known here, so one that holds a
 * secret is replaced by a stand-in that prints the censored form both ways: as text a URL is its censored address, an
 * error its type and message, and anything else its censored JSON, since its own `toString` would print what the JSON
 * form hides.
 */
export function redactInterpolatedValue(value: unknown): unknown {
  const redacted = redactSecretsInValue(value);
  if (redacted === value) return value;
  return {
    toJSON: (key: string): unknown => jsonFormOf(redacted, key),
    toString: (): string => censoredText(redacted),
  };
}

/**
 * The censored form as `%s` prints it. An error prints as `Name: message`, as `String()` prints it: its JSON form would
 * drop both and keep only its own keys. The standard form, not the error's own `toString`, which could print the secret.
 */
function censoredText(redacted: unknown): string {
  if (typeof redacted === "string") return redacted;
  if (redacted instanceof Error) {
    try {
      return Error.prototype.toString.call(redacted);
    } catch {
      // A `name` or `message` getter that throws: the JSON form, which does not read them.
    }
  }
  return censoredJsonText(redacted);
}

/** What JSON prints for `value`: it calls one `toJSON` per value, so the stand-in's must call the censored form's. */
function jsonFormOf(value: unknown, key: string): unknown {
  const toJSON = value === null || typeof value !== "object" ? undefined : (value as { toJSON?: unknown }).toJSON;
  return typeof toJSON === "function" ? toJSON.call(value, key) : value;
}

function censoredJsonText(redacted: unknown): string {
  try {
    return JSON.stringify(redacted) ?? LOG_CENSOR;
  } catch {
    // A BigInt, say: the censored form cannot be printed, and the original must not be.
    return LOG_CENSOR;
  }
}

/**
 * A getter, proxy trap or `toJSON` that throws: logging the object could leak what the walk did not see, so it is
 * left out. Describing the failure must not throw in turn (a thrown proxy, a `message` getter that throws).
 */
function redactionFailed(error: unknown): { logRedactionFailed: string } {
  try {
    return { logRedactionFailed: error instanceof Error ? String(error.message) : String(error) };
  } catch {
    return { logRedactionFailed: "the value could not be read" };
  }
}

/** `key`: the value's key or array index in its parent, which JSON passes to `toJSON`. */
function redactValue(value: unknown, key: string | number, ancestors: Ancestors): unknown {
  if (value === null || typeof value !== "object") return value;
  if (ancestors.includes(value)) return CIRCULAR;
  if (ancestors.length >= MAX_REDACTION_DEPTH) return TOO_DEEP;
  // Buffers and typed arrays: their JSON form holds numbers only, and building it copies every byte.
  if (ArrayBuffer.isView(value)) return value;
  // Its JSON form (and its text) is its address, credentials included; the censored address is a string JSON prints.
  if (value instanceof URL) return hasUrlCredentials(value) ? redactUrlCredentials(value) : value;
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === "function") return redactWithJsonForm(value, toJSON.call(value, String(key)), ancestors);
  return redactContainer(value, ancestors);
}

function redactContainer(value: object, ancestors: Ancestors): unknown {
  return Array.isArray(value) ? redactArray(value, ancestors) : redactObject(value, ancestors);
}

/**
 * A value JSON prints as `json` (what its `toJSON` returned; a Date's string has nothing to censor). The
 * value itself is returned whenever that form holds no secret, so JSON prints it as before. An error's own keys are
 * walked as well: pino's `err` serializer prints those rather than the `toJSON` form.
 */
function redactWithJsonForm(value: object, json: unknown, ancestors: Ancestors): unknown {
  if (json === value) return redactContainer(value, ancestors);
  const keysForm = value instanceof Error ? redactObject(value, ancestors) : value;
  ancestors.push(value);
  // JSON does not call the returned object's own toJSON again, so it is walked as a container.
  const jsonForm = json === null || typeof json !== "object" ? json : redactReturnedJson(json, ancestors);
  ancestors.pop();
  if (jsonForm === json) return keysForm;
  // JSON calls this toJSON in place of the original one and prints the censored form as it stands.
  const printsCensored = () => jsonForm;
  if (!(keysForm instanceof Error)) return { toJSON: printsCensored };
  const error = keysForm === value ? copyWith(value, new Map()) : keysForm;
  Object.defineProperty(error, "toJSON", { value: printsCensored, writable: true, configurable: true });
  return error;
}

function redactReturnedJson(json: object, ancestors: Ancestors): unknown {
  if (ancestors.includes(json)) return CIRCULAR;
  return redactContainer(json, ancestors);
}

function redactArray(items: readonly unknown[], ancestors: Ancestors): unknown[] {
  ancestors.push(items);
  let copy: unknown[] | undefined;
  for (let index = 0; index < items.length; index++) {
    const item = items[index];
    const redacted = redactValue(item, index, ancestors);
    if (redacted !== item) {
      copy ??= items.slice();
      copy[index] = redacted;
    }
  }
  ancestors.pop();
  return copy ?? (items as unknown[]);
}

function redactObject(source: object, ancestors: Ancestors): object {
  ancestors.push(source);
  const record = source as Record<string, unknown>;
  let changes: Map<string, unknown> | undefined;
  for (const key of keysToWalk(source)) {
    const value = record[key];
    if (value === undefined) continue;
    const redacted = SECRET_LOG_KEYS.has(key.toLowerCase()) ? LOG_CENSOR : redactValue(value, key, ancestors);
    if (redacted !== value) {
      changes ??= new Map();
      changes.set(key, redacted);
    }
  }
  ancestors.pop();
  return changes === undefined ? source : copyWith(source, changes);
}

/** What pino prints of an object: its own enumerable keys, and for an error also the aggregated `errors`. */
function keysToWalk(source: object): string[] {
  const keys = Object.keys(source);
  if (source instanceof Error && Array.isArray((source as { errors?: unknown }).errors) && !keys.includes("errors")) {
    keys.push("errors");
  }
  return keys;
}

function copyWith(source: object, changes: ReadonlyMap<string, unknown>): object {
  if (!(source instanceof Error)) {
    // Class instances become plain objects: JSON.stringify prints their own enumerable keys either way.
    const copy: Record<string, unknown> = { ...source };
    for (const [key, value] of changes) copy[key] = value;
    return copy;
  }
  // An error stays an error (same prototype, message, stack, cause), so pino's err serializer still formats it.
  const copy = Object.assign(Object.create(Object.getPrototypeOf(source)) as Error, source);
  for (const key of ["message", "stack", "cause"] as const) {
    if (Object.hasOwn(source, key) && !Object.hasOwn(copy, key)) {
      Object.defineProperty(copy, key, { value: source[key], writable: true, configurable: true, enumerable: false });
    }
  }
  for (const [key, value] of changes) {
    Object.defineProperty(copy, key, { value, writable: true, configurable: true, enumerable: key !== "errors" });
  }
  return copy;
}
