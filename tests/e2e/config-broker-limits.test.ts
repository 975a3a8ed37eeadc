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
    for (const maxUnackedDownPerDevice of [1, 65_535]) {
      const loaded = loadConfig({ overrides: { mqtt: { limits: { maxUnackedDownPerDevice } } } });
      assert.ok(loaded.ok);
      if (!loaded.ok) continue;
      assert.doesNotThrow(() => resolveBrokerOptions({ host, dataDir: "unused", limits: loaded.config.mqtt.limits }));
    }
  });

  test("mqtt.limits.maxUnackedDownPerDevice is refused outside 1 to 65535, naming the field", () => {
    for (const maxUnackedDownPerDevice of [0, 65_536]) {
      const refused = loadConfig({ overrides: { mqtt: { limits: { maxUnackedDownPerDevice } } } });
      assert.equal(refused.ok, false);
      if (!refused.ok) {
        assert.deepEqual(refused.issues.map(formatConfigIssue), [
          "config error: mqtt.limits.maxUnackedDownPerDevice must be an integer from 1 to 65535 (from overrides)",
        ]);
      }
    }
  });

  test("an address block shorter than one failure refill is refused by the config and the broker, naming both", () => {
    // Such a block ended with no failure forgiven yet: the address, no longer blocked, got CONNACK 3 (server busy)
    // for every CONNECT until the refill.
    const shortBlock = loadConfig({ overrides: { mqtt: { limits: { authBlockMs: 1000 } } } });
    assert.equal(shortBlock.ok, false);
    if (!shortBlock.ok) {
      assert.deepEqual(shortBlock.issues.map(formatConfigIssue), [
        "config error: mqtt.limits.authBlockMs must be at least mqtt.limits.authFailureRefillMs (3000) (from overrides)",
      ]);
    }
    const slowRefill = loadConfig({ overrides: { mqtt: { limits: { authFailureRefillMs: 120_000 } } } });
    assert.equal(slowRefill.ok, false);
    if (!slowRefill.ok) {
      assert.deepEqual(slowRefill.issues.map(formatConfigIssue), [
        "config error: mqtt.limits.authFailureRefillMs must not exceed mqtt.limits.authBlockMs (60000) (from overrides)",
      ]);
    }
    const limits = { authBlockMs: 1000, authFailureRefillMs: 3000 };
    assert.throws(
      () => resolveBrokerOptions({ host, dataDir: "unused", limits }),
      (err: Error & { details?: unknown }) =>
        err.message === "broker option limits.authBlockMs must be at least limits.authFailureRefillMs (3000)" &&
        JSON.stringify(err.details) === JSON.stringify({ field: "limits.authBlockMs" }),
    );
    // Equal is enough (one failure forgiven as the block ends), and without a per-address limit neither matters.
    for (const accepted of [
      { authBlockMs: 3000, authFailureRefillMs: 3000 },
      { authFailuresPerAddress: 0, authBlockMs: 1000, authFailureRefillMs: 3000 },
    ]) {
      const loaded = loadConfig({ overrides: { mqtt: { limits: accepted } } });
      assert.ok(loaded.ok);
      if (!loaded.ok) continue;
      assert.doesNotThrow(() => resolveBrokerOptions({ host, dataDir: "unused", limits: loaded.config.mqtt.limits }));
    }
  });
});
