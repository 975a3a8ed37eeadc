/**
 * The config accepts exactly the broker limits the broker accepts: a value the schema let through and the broker then
 * refused stopped the start with a fatal log line and exit 1, instead of a config error line and exit 2.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { AgentHost } from "../../agents/host.ts";
import { formatConfigIssue, loadConfig } from "../../app/config/index.ts";
import { resolveBrokerOptions } from "../../broker/options.ts";
import { MAX_DEPTH_CEILING } from "../../codecs/limits.ts";

/** Never called: the options are only resolved. */
const host: AgentHost = {
  open: async () => ({ status: "committed" }),
  deliver: () => ({ accepted: true, done: Promise.resolve({ status: "committed" }) }),
  close: async () => ({ status: "committed" }),
};

describe("mqtt.limits and the broker", () => {
  test(`mqtt.limits.maxDepth is refused above ${MAX_DEPTH_CEILING}, the deepest nesting every codec honours`, () => {
    const refused = loadConfig({ overrides: { mqtt: { limits: { maxDepth: MAX_DEPTH_CEILING + 1 } } } });
    assert.equal(refused.ok, false);
    if (!refused.ok) {
      assert.deepEqual(refused.issues.map(formatConfigIssue), [
        `config error: mqtt.limits.maxDepth must be an integer from 1 to ${MAX_DEPTH_CEILING} (from overrides)`,
      ]);
    }
  });

  test("the largest and smallest limits the config accepts are accepted by the broker", () => {
    for (const maxDepth of [1, MAX_DEPTH_CEILING]) {
      const loaded = loadConfig({ overrides: { mqtt: { limits: { maxDepth } } } });
      assert.ok(loaded.ok);
      if (!loaded.ok) continue;
      assert.doesNotThrow(() => resolveBrokerOptions({ host, dataDir: "unused", limits: loaded.config.mqtt.limits }));
    }
  });
});
