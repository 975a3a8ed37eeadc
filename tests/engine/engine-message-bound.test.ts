/**
 * The engine's own words in an error are cut to 500 characters wherever they come from: a plain-text body, the
 * message of a JSON error object (up to the 16 KiB read of a body) or an error object in the stream (up to the
 * 1 MiB of an SSE event). The error reaches logs, `stats`, and a device's `down/error` frame (a device without a
 * `maxFrame` takes it whole), so its size must not be the engine's choice.
 */
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { after, before, describe, test } from "node:test";
import { createEngineClient } from "../../engine-client/index.ts";
import { collect, type RawEngine, startRawEngine } from "./support.ts";

/** Room for the client's own words around the engine's 500 characters ("engine replica ... answered 400: "). */
const MAX_MESSAGE_CHARS = 500 + 100;

describe("the engine's words in an error are bounded", () => {
  let answer: (res: ServerResponse) => void = () => {};
  let server: RawEngine;
  before(async () => {
    server = await startRawEngine((res) => answer(res));
  });
  after(() => server.close());
  const ask = async () => {
    const engine = createEngineClient({
      urls: [server.url],
      model: "m",
      retry: { maxAttempts: 1 },
      apiKey: "sk-secret-key",
    });
    try {
      return await collect(engine.stream({ messages: [{ role: "user", content: "x" }] }, { agentId: "d" }));
    } finally {
      await engine.close();
    }
  };

  test("the message of a JSON error object is cut like a plain-text body", async () => {
    answer = (res) => {
      const body = JSON.stringify({ error: { message: `invalid: ${"why ".repeat(3000)}`, type: "BadRequestError" } });
      res.writeHead(400, { "content-type": "application/json" });
      res.end(body);
    };
    const { error } = await ask();
    assert.equal(error?.code, "BRIDGE_ERR_ENGINE_BAD_REQUEST");
    assert.match(error?.message ?? "", /refused the request \(400\): invalid: why why/);
    assert.ok((error?.message.length ?? 0) <= MAX_MESSAGE_CHARS, `${error?.message.length} characters`);
  });

  test("an error object in the stream is cut, after the key is redacted", async () => {
    answer = (res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      const message = `${"y".repeat(495)}sk-secret-key ${"z".repeat(100_000)}`;
      res.end(`data: ${JSON.stringify({ error: { message } })}\n\n`);
    };
    const { error } = await ask();
    assert.equal(error?.code, "BRIDGE_ERR_ENGINE_STREAM_BROKEN");
    assert.ok((error?.message.length ?? 0) <= MAX_MESSAGE_CHARS, `${error?.message.length} characters`);
    assert.ok(!(error?.message ?? "").includes("sk-se"), "no part of the key");
  });
});
