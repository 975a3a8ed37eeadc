/**
 * The API's JSON body parser. `JSON.parse` turns an integer token beyond ±(2^53-1) into the nearest double, silently
 * (`12345678901234567890123` becomes `12345678901234567000000`), while the device protocol carries such integers
 * exactly (CBOR and protobuf bignums, docs/protocol.md "Values"). So bodies are read by the bridge's own strict
 * RFC 8259 parser, the one device JSON goes through: such a token becomes a `bigint`, and reaches the agent and the
 * device unchanged. Where a field of the API itself wants a number, its schema refuses the bigint by name (see
 * errors.ts). The parser also refuses duplicate keys, naming them, as device JSON does.
 *
 * What the default parser refused stays refused: an empty body, a syntax error, `__proto__` keys and a `constructor`
 * holding a `prototype` (fastify's prototype poisoning checks), and a body nested deeper than MAX_BODY_DEPTH. What it
 * took stays taken, a leading byte order mark included, except text no device frame can carry: a lone surrogate
 * (`"\ud800"`, refused by the parser naming its field) and a body that is not valid UTF-8 (a surrogate written as
 * bytes, a Latin-1 `é`), which fastify's decoding turned into U+FFFD silently. Both got past the parser, to be
 * stored with a 2xx where no agent checked them (an agent class) or refused later without naming the field.
 */
import { errorCodes, type FastifyInstance } from "fastify";
import { parseJson } from "../../codecs/json/json-parse.ts";
import { DecodeFault, describeJsonSyntax } from "../../codecs/schema/fault.ts";
import { withoutByteOrderMark } from "../../codecs/text-utf8.ts";
import { API_ERROR_CODES, ApiError } from "./errors.ts";

/**
 * Strict: a body that is not UTF-8 is refused, never patched with U+FFFD. The BOM is skipped below
 * (withoutByteOrderMark).
 */
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Replaces the `application/json` parser of the `api` scope (and only of it).
 *
 * @example
 * await app.register(async (api) => { useExactJsonBodies(api, MAX_BODY_DEPTH); ... }, { prefix: "/api" });
 */
export function useExactJsonBodies(api: FastifyInstance, maxDepth: number): void {
  api.removeContentTypeParser("application/json");
  api.addContentTypeParser("application/json", { parseAs: "buffer" }, (_request, body, done) => {
    const bytes = body as Buffer;
    if (bytes.length === 0) {
      // The default parser's own error, so the answer is the one it always was (415, "send a JSON body").
      done(new errorCodes.FST_ERR_CTP_EMPTY_JSON_BODY(), undefined);
      return;
    }
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      done(new ApiError(400, API_ERROR_CODES.validation, "body is not valid UTF-8", "body"), undefined);
      return;
    }
    try {
      // fastify's default parser (secure-json-parse) skipped a leading byte order mark too.
      const value = parseJson(withoutByteOrderMark(text), maxDepth);
      const poisoned = constructorPrototypePath(value);
      if (poisoned !== undefined) {
        throw new ApiError(
          400,
          API_ERROR_CODES.validation,
          `${poisoned}: a constructor.prototype is not accepted`,
          poisoned,
        );
      }
      done(null, value);
    } catch (err) {
      done(toApiError(err, maxDepth), undefined);
    }
  });
}

function toApiError(err: unknown, maxDepth: number): Error {
  if (!(err instanceof DecodeFault)) return err instanceof Error ? err : new Error(String(err));
  switch (err.code) {
    case "BRIDGE_ERR_FRAME_TOO_DEEP":
      // The API's one depth check of a body (register.ts passes MAX_BODY_DEPTH): no JSON body reaches a route deeper.
      return new ApiError(400, API_ERROR_CODES.validation, `body nests deeper than ${maxDepth}`, "body");
    case "BRIDGE_ERR_FRAME_INVALID": {
      // A fault at a key or a value (a duplicate, `__proto__`, an integer of over 4001 digits, a lone surrogate): its
      // path, under `body`, becomes the API's field (the body itself at the top), named before the parser's problem.
      const field = err.field === undefined ? "body" : `body.${err.field}`;
      return new ApiError(400, API_ERROR_CODES.validation, `${field}: ${err.problem}`, field);
    }
    default: {
      const detail = err.syntax === undefined ? err.message : describeJsonSyntax(err.syntax);
      return new ApiError(400, API_ERROR_CODES.validation, `body is not valid JSON: ${detail}`, "body");
    }
  }
}

/**
 * The field path of the first object holding a `constructor` key whose value holds a `prototype` key (what fastify's
 * default parser refuses as constructor poisoning), or undefined. Iterative: the depth is bounded, the width is not.
 */
function constructorPrototypePath(value: unknown): string | undefined {
  const stack: Array<{ v: unknown; path: string }> = [{ v: value, path: "body" }];
  while (stack.length > 0) {
    const { v, path } = stack.pop() as { v: unknown; path: string };
    if (typeof v !== "object" || v === null) continue;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) stack.push({ v: v[i], path: `${path}.${i}` });
      continue;
    }
    const map = v as Record<string, unknown>;
    const ctor = Object.hasOwn(map, "constructor") ? map.constructor : undefined;
    if (typeof ctor === "object" && ctor !== null && Object.hasOwn(ctor, "prototype")) return `${path}.constructor`;
    for (const [key, child] of Object.entries(map)) stack.push({ v: child, path: `${path}.${key}` });
  }
  return undefined;
}
