import assert from "node:assert/strict";
import { test } from "node:test";
import type { DestinationStream } from "pino";
import { MAX_REDACTION_DEPTH } from "../../app/log-redaction.ts";
import { createLogger } from "../../app/logging.ts";

interface CapturedLogs {
  logger: ReturnType<typeof createLogger>;
  /** The lines as written. */
  raw: string[];
  /** The lines parsed, as they are now. */
  lines: () => Record<string, unknown>[];
}

function capturingLogger(): CapturedLogs {
  const raw: string[] = [];
  const destination: DestinationStream = { write: (line: string) => void raw.push(line) };
  const logger = createLogger({ destination, level: "debug" });
  return { logger, raw, lines: () => raw.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

/** `{ a: { a: ... { [key]: value } } }` with the key at `depth` (1: a top-level key). */
function nestAt(depth: number, key: string, value: unknown): Record<string, unknown> {
  let object: Record<string, unknown> = { [key]: value, kept: `visible-${depth}` };
  for (let level = 1; level < depth; level++) object = { a: object };
  return object;
}

const SECRET_KEYS = ["authorization", "Authorization", "apiKey", "api_key", "apiToken", "token", "password", "secret"];

test("a secret key is censored at every depth from 1 to 6, the rest of the object kept", () => {
  const { logger, lines, raw } = capturingLogger();
  for (const key of SECRET_KEYS) {
    for (let depth = 1; depth <= 6; depth++) logger.info(nestAt(depth, key, `s3cr3t-${key}-${depth}`), "line");
  }
  assert.equal(raw.length, SECRET_KEYS.length * 6);
  for (const line of raw) assert.doesNotMatch(line, /s3cr3t/);
  lines().forEach((line, index) => {
    const depth = (index % 6) + 1;
    let node = line;
    for (let level = 1; level < depth; level++) node = node.a as Record<string, unknown>;
    assert.equal(node[SECRET_KEYS[Math.floor(index / 6)]!], "[redacted]");
    assert.equal(node.kept, `visible-${depth}`);
  });
});

test("headers, config and engine options objects log censored; the caller's object is not changed", () => {
  const { logger, lines } = capturingLogger();
  const logged = {
    request: { headers: { Authorization: "Bearer abc", "content-type": "application/json" } },
    config: { http: { apiToken: "tok-1" }, engine: { apiKey: "sk-1", urls: ["http://e:8000"] } },
    engineOptions: [{ api_key: "sk-2", model: "m" }],
  };
  logger.warn(logged, "snapshot");
  const line = lines()[0] as {
    request: { headers: Record<string, string> };
    config: { http: Record<string, string>; engine: Record<string, unknown> };
    engineOptions: Record<string, string>[];
  };
  assert.deepEqual(line.request.headers, { Authorization: "[redacted]", "content-type": "application/json" });
  assert.deepEqual(line.config, {
    http: { apiToken: "[redacted]" },
    engine: { apiKey: "[redacted]", urls: ["http://e:8000"] },
  });
  assert.deepEqual(line.engineOptions, [{ api_key: "[redacted]", model: "m" }]);
  assert.equal(logged.request.headers.Authorization, "Bearer abc");
  assert.equal(logged.config.engine.apiKey, "sk-1");
});

test("an error's properties are censored and it is still logged as an error", () => {
  const { logger, lines, raw } = capturingLogger();
  const error = Object.assign(new Error("engine refused"), {
    code: "E_ENGINE",
    options: { headers: { authorization: "Bearer sk-3" }, password: "pw" },
  });
  logger.child({ component: "engine" }).error({ err: error }, "call failed");
  assert.doesNotMatch(raw[0]!, /sk-3|"pw"/);
  const err = lines()[0]!.err as Record<string, unknown>;
  assert.equal(err.type, "Error");
  assert.equal(err.message, "engine refused");
  assert.match(String(err.stack), /^Error: engine refused\n/);
  assert.equal(err.code, "E_ENGINE");
  assert.deepEqual(err.options, { headers: { authorization: "[redacted]" }, password: "[redacted]" });
  assert.equal(error.options.password, "pw");
});

test("circular, very deep and hostile objects log without throwing and without their secrets", () => {
  const { logger, lines, raw } = capturingLogger();
  const circular: Record<string, unknown> = { token: "loop-secret" };
  circular.self = circular;
  logger.info({ circular }, "circular");
  assert.deepEqual(lines()[0]!.circular, { token: "[redacted]", self: "[Circular]" });

  logger.info(nestAt(MAX_REDACTION_DEPTH + 8, "secret", "deep-secret"), "deep");
  assert.doesNotMatch(raw[1]!, /deep-secret/);
  assert.match(raw[1]!, /nested too deep/);

  const hostile = {
    get secretHolder(): never {
      throw new Error("getter refused");
    },
  };
  logger.info({ hostile }, "hostile");
  assert.equal(lines()[2]!.logRedactionFailed, "getter refused");
  assert.equal(lines()[2]!.msg, "hostile");

  const throwingJson = {
    toJSON(): never {
      throw new Error("toJSON refused");
    },
  };
  logger.info({ throwingJson }, "to json");
  assert.equal(lines()[3]!.logRedactionFailed, "toJSON refused");
  assert.equal(lines()[3]!.msg, "to json");
});

class EngineCallError extends Error {
  override name = "EngineCallError";
  /** As HTTP clients' errors do: the JSON form carries the request's config, headers included. */
  toJSON(): Record<string, unknown> {
    return { message: this.message, config: { headers: { Authorization: "Bearer sk-error-json" } } };
  }
}

test("what a toJSON method returns is censored; an error under err is still logged as an error", () => {
  const { logger, lines, raw } = capturingLogger();
  const options = { model: "m", toJSON: () => ({ model: "m", engine: { apiKey: "sk-to-json" } }) };
  const returnsItself = {
    token: "tok-self",
    toJSON(): unknown {
      return this;
    },
  };
  logger.info({ options, returnsItself, failure: new EngineCallError("refused"), at: new Date(0) }, "json forms");
  logger.error({ err: new EngineCallError("refused") }, "call failed");
  for (const line of raw) assert.doesNotMatch(line, /sk-to-json|tok-self|sk-error-json/);
  const [forms, failed] = lines();
  assert.deepEqual(forms!.options, { model: "m", engine: { apiKey: "[redacted]" } });
  assert.deepEqual(forms!.returnsItself, { token: "[redacted]" });
  assert.deepEqual(forms!.failure, { message: "refused", config: { headers: { Authorization: "[redacted]" } } });
  assert.equal(forms!.at, "1970-01-01T00:00:00.000Z");
  const err = failed!.err as Record<string, unknown>;
  assert.equal(err.type, "EngineCallError");
  assert.match(String(err.stack), /^EngineCallError: refused\n/);
});

test("a Map and a Set log as {} (JSON prints no entries), so their secrets never reach the line", () => {
  const { logger, raw } = capturingLogger();
  logger.info({ map: new Map([["apiKey", "sk-map"]]), set: new Set([{ token: "tok-set" }]) }, "collections");
  assert.match(raw[0]!, /"map":\{\},"set":\{\}/);
});

test("values interpolated into the message (%j, %o, %O, an object message) are censored", () => {
  const { logger, lines, raw } = capturingLogger();
  const headers = { authorization: "Bearer sk-o" };
  const options = { toJSON: () => ({ engine: { apiKey: "sk-to-json" } }) };
  logger.info("engine options %j %o %O %j", { apiKey: "sk-j", model: "m" }, { headers }, [{ password: "pw" }], options);
  // pino's types want a string message, but it prints an object one as JSON, and untyped callers can pass one.
  const logUntyped = logger.warn as (...args: unknown[]) => void;
  logUntyped.call(logger, { device: "d1" }, { secret: "object-message" });
  const { proxy: revoked, revoke } = Proxy.revocable({}, {});
  revoke();
  logger.info("unreadable %j", revoked);
  for (const line of raw) assert.doesNotMatch(line, /sk-j|sk-o|"pw"|sk-to-json|object-message/);
  const [formatted, objectMessage, unreadable] = lines();
  assert.equal(
    formatted!.msg,
    'engine options {"apiKey":"[redacted]","model":"m"} {"headers":{"authorization":"[redacted]"}} ' +
      '[{"password":"[redacted]"}] {"engine":{"apiKey":"[redacted]"}}',
  );
  assert.deepEqual(objectMessage!.msg, { secret: "[redacted]" });
  assert.equal(objectMessage!.device, "d1");
  assert.match(String(unreadable!.msg), /^unreadable \{"logRedactionFailed":".*revoked.*"\}$/);
  assert.equal(headers.authorization, "Bearer sk-o");
});

test("child logger bindings are censored, in every descendant, after setBindings and in the base bindings", () => {
  const raw: string[] = [];
  const logger = createLogger({
    destination: { write: (line: string) => void raw.push(line) },
    base: { service: "agent-bridge", secret: "base-secret" },
  });
  const child = logger.child({
    component: "engine",
    apiKey: "sk-bound",
    upstream: { headers: { Authorization: "Bearer sk-header" }, toJSON: () => ({ token: "tok-json" }) },
  });
  child.child({ agent: "d1", password: "pw-grandchild" }).info("grandchild");
  child.setBindings({ token: "tok-set-later" });
  child.info("after setBindings");
  const { proxy: revoked, revoke } = Proxy.revocable({}, {});
  revoke();
  logger.child({ revoked }).info("unreadable binding");
  for (const line of raw) assert.doesNotMatch(line, /base-secret|sk-bound|sk-header|tok-json|pw-grandchild|tok-set/);
  const [grandchild, later, unreadable] = raw.map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.equal(grandchild!.secret, "[redacted]");
  assert.equal(grandchild!.component, "engine");
  assert.equal(grandchild!.apiKey, "[redacted]");
  assert.deepEqual(grandchild!.upstream, { token: "[redacted]" });
  assert.equal(grandchild!.agent, "d1");
  assert.equal(grandchild!.password, "[redacted]");
  assert.equal(later!.token, "[redacted]");
  assert.match(String(unreadable!.logRedactionFailed), /revoked/);
  assert.equal(unreadable!.msg, "unreadable binding");
});

test("a URL's user and password and an object's secrets never print, under %s (its toString) nor anywhere else", () => {
  const { logger, lines, raw } = capturingLogger();
  const engine = new URL("http://user:pw-url@gpu-1:8000/v1");
  const keyHolder = {
    apiKey: "sk-to-string",
    toString(): string {
      return `key ${this.apiKey}`;
    },
  };
  logger.info("engine %s, %s, %s, %j", engine, keyHolder, new URL("http://gpu-2:8000/"), engine);
  logger.info({ engine, replicas: [engine] }, "as a field");
  logger.child({ engine }).info("bound");
  for (const line of raw) assert.doesNotMatch(line, /pw-url|user:|sk-to-string/);
  const [formatted, field, bound] = lines();
  assert.equal(
    formatted!.msg,
    'engine http://[redacted]@gpu-1:8000/v1, {"apiKey":"[redacted]"}, http://gpu-2:8000/, ' +
      '"http://[redacted]@gpu-1:8000/v1"',
  );
  assert.equal(field!.engine, "http://[redacted]@gpu-1:8000/v1");
  assert.deepEqual(field!.replicas, ["http://[redacted]@gpu-1:8000/v1"]);
  assert.equal(bound!.engine, "http://[redacted]@gpu-1:8000/v1");
  assert.equal(engine.password, "pw-url");
});

test("a %s value with nothing to censor prints through its own toString, as before", () => {
  const { logger, lines } = capturingLogger();
  const named = { name: "gpu-1", toString: () => "replica gpu-1" };
  logger.info("%s and %s and %s", named, new Error("refused"), { plain: true });
  assert.equal(lines()[0]!.msg, "replica gpu-1 and Error: refused and [object Object]");
});

test("an error printed with %s that holds a secret keeps its type and message, the secret left out", () => {
  const { logger, lines, raw } = capturingLogger();
  const refused = Object.assign(new TypeError("engine refused"), { headers: { authorization: "Bearer sk-in-error" } });
  // A subclass's own toString could print what the walk censored: the line uses the standard form instead.
  class Chatty extends Error {
    token = "sk-chatty";
    override toString(): string {
      return `chatty ${this.token}`;
    }
  }
  logger.warn("call failed: %s; then %s", refused, new Chatty("gave up"));
  for (const line of raw) assert.doesNotMatch(line, /sk-in-error|sk-chatty/);
  assert.equal(lines()[0]!.msg, "call failed: TypeError: engine refused; then Error: gave up");
});
