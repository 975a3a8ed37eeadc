import assert from "node:assert/strict";
import { describe, mock, test } from "node:test";
import { inspect } from "node:util";
import { DEVICE_TOOLS } from "../../agents/device/reasoning/tools.ts";
import type { ChatOptions, ChatRequest } from "../../agents/engine.ts";
import { BridgeError } from "../../errors/index.ts";
import {
  ENGINE_ERROR_CODES,
  FairQueue,
  createEngineClient,
  fullJitterDelayMs,
  isRetryableEngineError,
  parseRetryAfterMs,
  redactSecret,
  rendezvousOrder,
  systemClock,
} from "../../engine-client/index.ts";

describe("fair queue", () => {
  test("agents take turns, so a single request is not stuck behind a flood from another agent", () => {
    const q = new FairQueue<string>();
    for (let i = 0; i < 5; i++) q.push("flood", 0, `f${i}`);
    q.push("quiet", 0, "q0");
    const order = Array.from({ length: 6 }, () => q.shift());
    assert.deepEqual(order, ["f0", "q0", "f1", "f2", "f3", "f4"]);
  });

  test("higher priority is served first; within an agent order is FIFO; removed items never come out", () => {
    const q = new FairQueue<string>();
    q.push("a", 0, "a0");
    q.push("a", 0, "a1");
    q.push("b", 5, "b0");
    q.push("c", 5, "c0");
    assert.equal(q.remove("a", 0, "a0"), true);
    assert.equal(q.remove("a", 0, "missing"), false);
    assert.equal(q.size, 3);
    assert.deepEqual([q.shift(), q.shift(), q.shift(), q.shift()], ["b0", "c0", "a1", undefined]);
    assert.equal(q.size, 0);
  });
});

describe("retry policy", () => {
  test("full jitter stays below the exponential ceiling, capped by maxDelayMs, using the injected random", () => {
    assert.equal(
      fullJitterDelayMs(1, 100, 5000, () => 0.5),
      50,
    );
    assert.equal(
      fullJitterDelayMs(3, 100, 5000, () => 0.5),
      200,
    );
    assert.equal(
      fullJitterDelayMs(20, 100, 5000, () => 0.999),
      4995,
    );
    assert.equal(
      fullJitterDelayMs(2, 100, 5000, () => 0),
      0,
    );
  });

  test("Retry-After is read as seconds or as an HTTP date", () => {
    const now = Date.UTC(2026, 0, 1, 0, 0, 0);
    assert.equal(parseRetryAfterMs("3", now), 3000);
    assert.equal(parseRetryAfterMs(new Date(now + 10_000).toUTCString(), now), 10_000);
    assert.equal(parseRetryAfterMs("soon", now), undefined);
    assert.equal(parseRetryAfterMs(undefined, now), undefined);
  });

  test("a Retry-After HTTP-date is read in RFC 9110's three formats, always as GMT, and nothing else is a date", () => {
    const now = Date.UTC(1994, 10, 6, 8, 49, 27);
    const zone = process.env.TZ;
    // The obsolete asctime format carries no zone: JavaScript's Date.parse reads it as local time.
    process.env.TZ = "America/New_York";
    try {
      assert.equal(parseRetryAfterMs("Sun, 06 Nov 1994 08:49:37 GMT", now), 10_000, "IMF-fixdate");
      assert.equal(parseRetryAfterMs("Sunday, 06-Nov-94 08:49:37 GMT", now), 10_000, "RFC 850");
      assert.equal(parseRetryAfterMs("Sun Nov  6 08:49:37 1994", now), 10_000, "asctime");
      assert.equal(parseRetryAfterMs("Sun, 06 Nov 1994 08:49:17 GMT", now), 0, "a date passed is now");
      const in2026 = Date.UTC(2026, 0, 1);
      assert.equal(parseRetryAfterMs("Friday, 01-Jan-77 00:00:10 GMT", in2026), 0, "'77 is 1977, not 51 years ahead");
      assert.equal(parseRetryAfterMs("Thursday, 01-Jan-26 00:00:10 GMT", in2026), 10_000);
      const junkDates = ["Sat, 31 Feb 2026 00:00:00 GMT", "Thu, 01 Jan 2026 24:00:00 GMT"];
      for (const junk of [
        "1.5",
        "-5",
        "2 minutes",
        "1994-11-06T08:49:37Z",
        "Sun, 06 Nov 1994 08:49:37 EST",
        ...junkDates,
      ]) {
        assert.equal(parseRetryAfterMs(junk, now), undefined, junk);
      }
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });

  test("the retryable predicate walks the cause chain and the outermost engine code decides", () => {
    const overloaded = new BridgeError(ENGINE_ERROR_CODES.overloaded, "busy");
    const broken = new BridgeError(ENGINE_ERROR_CODES.streamBroken, "broken", {}, { cause: overloaded });
    const wrapped = new Error("agent failed", { cause: overloaded });
    const network = Object.assign(new Error("refused"), { code: "ECONNREFUSED" });
    assert.equal(isRetryableEngineError(overloaded), true);
    assert.equal(isRetryableEngineError(wrapped), true);
    assert.equal(isRetryableEngineError(broken), false);
    assert.equal(isRetryableEngineError(new Error("x", { cause: network })), true);
    assert.equal(isRetryableEngineError(new BridgeError(ENGINE_ERROR_CODES.cancelled, "c")), false);
    assert.equal(
      isRetryableEngineError(new BridgeError(ENGINE_ERROR_CODES.unavailable, "501", { retryable: false })),
      false,
    );
    assert.equal(isRetryableEngineError(new Error("plain")), false);
  });

  test("secrets are redacted wherever they appear in a text", () => {
    assert.equal(redactSecret("bad key sk-1 (sk-1)", "sk-1"), "bad key [REDACTED] ([REDACTED])");
    assert.equal(redactSecret("nothing", undefined), "nothing");
  });
});

describe("system clock", () => {
  test("a timer longer than the longest Node timer fires after its whole delay, and can be cleared", (t) => {
    mock.timers.enable({ apis: ["setTimeout"] });
    t.after(() => mock.timers.reset());
    const delayMs = 2 * 2_147_483_647 + 10;
    let fired = 0;
    systemClock.setTimeout(() => fired++, delayMs);
    const cleared = systemClock.setTimeout(() => fired++, delayMs);
    mock.timers.tick(2_147_483_647);
    systemClock.clearTimeout(cleared);
    mock.timers.tick(2_147_483_647);
    assert.equal(fired, 0, "not before its delay");
    mock.timers.tick(10);
    assert.equal(fired, 1, "once, at its delay; the cleared one never");
  });
});

describe("affinity", () => {
  test("rendezvous order is stable per key, and removing a replica moves only the keys it had", () => {
    const replicas = ["http://a:1", "http://b:1", "http://c:1"].map((key) => ({ key }));
    const first = new Map<string, string>();
    for (let i = 0; i < 300; i++) first.set(`dev-${i}`, rendezvousOrder(`dev-${i}`, replicas)[0].key);
    const used = new Set(first.values());
    assert.equal(used.size, 3, "all replicas get some agents");
    const without = replicas.filter((r) => r.key !== "http://b:1");
    for (const [agent, replica] of first) {
      const now = rendezvousOrder(agent, without)[0].key;
      if (replica !== "http://b:1") assert.equal(now, replica, `${agent} stays where it was`);
    }
  });
});

describe("client options", () => {
  test("invalid options are refused at construction with an error naming the field", () => {
    assert.throws(
      () => createEngineClient({ urls: ["ftp://x"] }),
      (err: unknown) =>
        err instanceof BridgeError && err.code === "BRIDGE_ERR_CONFIG" && err.details.field === "engine.urls[0]",
    );
    assert.throws(
      () => createEngineClient({ urls: ["http://x"], maxInFlightPerReplica: 0 }),
      (err: unknown) => err instanceof BridgeError && err.details.field === "engine.maxInFlightPerReplica",
    );
    // The server root and the OpenAI SDK's `/v1` base URL name one replica, whatever the spelling of the host.
    for (const urls of [
      ["http://127.0.0.1:8000", "http://127.0.0.1:8000/v1/"],
      ["http://Engine:8000", "http://engine:8000/"],
    ]) {
      assert.throws(
        () => createEngineClient({ urls }),
        (err: unknown) => err instanceof BridgeError && err.details.field === "engine.urls",
        `${urls.join(" and ")} are one replica`,
      );
    }
    assert.throws(
      () => createEngineClient({ urls: ["http://x"], retry: { maxAttempts: 1.5 } }),
      (err: unknown) => err instanceof BridgeError && err.details.field === "engine.retry.maxAttempts",
    );
    // A lower bound above its upper bound.
    assert.throws(
      () => createEngineClient({ urls: ["http://x"], retry: { baseDelayMs: 5000, maxDelayMs: 1000 } }),
      (err: unknown) => err instanceof BridgeError && err.details.field === "engine.retry.baseDelayMs",
    );
    assert.throws(
      () => createEngineClient({ urls: ["http://x"], cooldown: { cooldownMs: 10_000, maxCooldownMs: 3000 } }),
      (err: unknown) => err instanceof BridgeError && err.details.field === "engine.cooldown.cooldownMs",
    );
  });

  test("an API key an HTTP header cannot carry is refused at construction, without showing it", () => {
    // A key pasted with a typographic quote or a line break: every request would fail in undici before it left, as
    // UNAVAILABLE, retried and counted until every replica cooled down, the cause hidden behind "cooling down".
    for (const apiKey of ["sk-abc\u201d", "sk-abc\n", "sk-\u0000abc", "\u{1F511}"]) {
      assert.throws(
        () => createEngineClient({ urls: ["http://x"], apiKey }),
        (err: unknown) =>
          err instanceof BridgeError &&
          err.code === "BRIDGE_ERR_CONFIG" &&
          err.details.field === "engine.apiKey" &&
          !err.message.includes(apiKey),
        JSON.stringify(apiKey),
      );
    }
    // Visible ASCII, and Latin-1 text as HTTP allows it, are fine.
    for (const apiKey of ["sk-ABC_123.-~+/=", "token with spaces", "cl\u00e9"]) {
      assert.doesNotThrow(() => createEngineClient({ urls: ["http://x"], apiKey }).close(), apiKey);
    }
  });

  test("a call with invalid options is BAD_REQUEST, a negative timeoutMs or missing options included", async () => {
    // Nothing listens on port 1: a call that got past validation would fail as UNAVAILABLE instead.
    const engine = createEngineClient({ urls: ["http://127.0.0.1:1"], model: "m", retry: { maxAttempts: 1 } });
    const request: ChatRequest = { messages: [{ role: "user", content: "x" }] };
    try {
      for (const options of [{ agentId: "d", timeoutMs: -5 }, undefined, null]) {
        await assert.rejects(
          engine.streamBatches(request, options as unknown as ChatOptions, () => {}),
          (err: unknown) => err instanceof BridgeError && err.code === ENGINE_ERROR_CODES.badRequest,
          `options ${JSON.stringify(options)}`,
        );
      }
      assert.deepEqual(engine.stats().errors, { [ENGINE_ERROR_CODES.badRequest]: 3 });
    } finally {
      await engine.close();
    }
  });

  test("a malformed request is BAD_REQUEST, not retryable, and never sent", async () => {
    const engine = createEngineClient({ urls: ["http://127.0.0.1:1"], model: "m", retry: { maxAttempts: 1 } });
    const user = { role: "user", content: "x" };
    const malformed = [
      { messages: [null] },
      { messages: [user], tools: "set_led" },
      { messages: [user], tools: [null] },
      { messages: [user], jsonSchema: null },
      // Passes the shape checks but JSON cannot hold it: caught when the body is encoded.
      { messages: [user], jsonSchema: { name: "n", schema: { n: 1n } } },
    ];
    try {
      for (const request of malformed) {
        for (const call of [
          () => engine.complete(request as unknown as ChatRequest, { agentId: "d" }),
          () => engine.streamBatches(request as unknown as ChatRequest, { agentId: "d" }, () => {}),
        ]) {
          await assert.rejects(
            call(),
            (err: unknown) =>
              err instanceof BridgeError && err.code === ENGINE_ERROR_CODES.badRequest && !isRetryableEngineError(err),
            `request ${inspect(request)}`,
          );
        }
      }
      assert.equal(engine.stats().replicas[0].attempts, 0);
    } finally {
      await engine.close();
    }
  });

  test("a NaN or Infinity temperature is BAD_REQUEST, not sent as null (the engine default)", async () => {
    const engine = createEngineClient({ urls: ["http://127.0.0.1:1"], model: "m", retry: { maxAttempts: 1 } });
    try {
      for (const temperature of [Number.NaN, Number.POSITIVE_INFINITY]) {
        const request: ChatRequest = { messages: [{ role: "user", content: "x" }], temperature };
        await assert.rejects(
          engine.complete(request, { agentId: "d" }),
          (err: unknown) => err instanceof BridgeError && err.code === ENGINE_ERROR_CODES.badRequest,
          `temperature ${temperature}`,
        );
      }
      assert.equal(engine.stats().replicas[0].attempts, 0);
    } finally {
      await engine.close();
    }
  });

  test("a toolChoice other than auto, none or required, or one that needs tools without them, is BAD_REQUEST", async () => {
    const engine = createEngineClient({ urls: ["http://127.0.0.1:1"], model: "m", retry: { maxAttempts: 1 } });
    const messages: ChatRequest["messages"] = [{ role: "user", content: "x" }];
    try {
      const refused = [
        { messages, tools: DEVICE_TOOLS, toolChoice: "sometimes" } as unknown as ChatRequest,
        { messages, toolChoice: "auto" } satisfies ChatRequest,
        { messages, tools: [], toolChoice: "required" } satisfies ChatRequest,
      ];
      for (const request of refused) {
        await assert.rejects(
          engine.complete(request, { agentId: "d" }),
          (err: unknown) =>
            err instanceof BridgeError &&
            err.code === ENGINE_ERROR_CODES.badRequest &&
            /request\.toolChoice/.test(err.message),
          inspect(request),
        );
      }
      assert.equal(engine.stats().replicas[0].attempts, 0);
    } finally {
      await engine.close();
    }
  });

  test("without engine URLs every request fails with NOT_CONFIGURED and health says so", async () => {
    const engine = createEngineClient({});
    await assert.rejects(
      async () => {
        for await (const _ of engine.stream({ messages: [{ role: "user", content: "x" }] }, { agentId: "d" })) {
          // never reached
        }
      },
      (err: unknown) => err instanceof BridgeError && err.code === ENGINE_ERROR_CODES.notConfigured,
    );
    await assert.rejects(
      engine.complete({ messages: [{ role: "user", content: "x" }] }, { agentId: "d" }),
      (err: unknown) => err instanceof BridgeError && err.code === ENGINE_ERROR_CODES.notConfigured,
    );
    assert.deepEqual(await engine.health(), { status: "not-configured", replicas: [] });
    await engine.close();
  });
});
