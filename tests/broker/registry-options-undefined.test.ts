import assert from "node:assert/strict";
import { test } from "node:test";
import { createDeviceRegistry } from "../../broker/index.ts";

// Callers pass options through from their own optional fields (`{ clock: opts.clock }`): a key present with the value
// undefined means "not given", as for any optional option, not "no clock".
test("a registry option given as undefined takes its default", async () => {
  const registry = createDeviceRegistry({
    path: ":memory:",
    clock: undefined,
    verifyCacheMs: undefined,
    verifyCacheMaxEntries: undefined,
    touchFlushMs: undefined,
    scrypt: { N: 1024, r: 8, p: 1 },
  });
  try {
    const before = Date.now();
    const added = await registry.add("dev-1", {});
    assert.equal(added.status, "created");
    if (added.status !== "created") return;
    assert.ok(added.device.createdAt >= before && added.device.createdAt <= Date.now());
    assert.equal((await registry.verify("dev-1", added.secret)).status, "ok");
  } finally {
    registry.close();
  }
});
