import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ENGINE_CLIENT_DEFAULTS } from "../../engine-client/index.ts";

describe("engine client keep-alive default", () => {
  test("an idle socket is closed by the client before vLLM's server closes it (5 s, announced in no header)", () => {
    assert.ok(
      ENGINE_CLIENT_DEFAULTS.keepAliveTimeoutMs < 5_000,
      `keepAliveTimeoutMs ${ENGINE_CLIENT_DEFAULTS.keepAliveTimeoutMs}`,
    );
  });
});
