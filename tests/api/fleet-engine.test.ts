import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import Fastify from "fastify";
import type { ChatStreamEvent } from "../../agents/engine.ts";
import type { OperatorDeps } from "../../app/api/deps.ts";
import { ENGINE_HEALTH_CACHE_MS, registerFleetRoutes } from "../../app/api/routes/fleet.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { AUTH, type ApiFixture, createApiFixture } from "./helpers.ts";
import { idleOperatorDeps } from "./idle-operator-deps.ts";

let probes = 0;
let failing = false;
const engine = {
  async *stream(): AsyncIterable<ChatStreamEvent> {
    yield { type: "done", finishReason: "stop", usage: { promptTokens: 0, completionTokens: 0, cachedTokens: 0 } };
  },
  async health() {
    probes++;
    if (failing) throw new Error("connection refused");
    return { status: "ok", replicas: [{ url: "http://engine", state: "healthy", healthy: true }] };
  },
  stats() {
    return { queued: 2, inFlight: 1 };
  },
};

let f: ApiFixture;
before(async () => {
  f = await createApiFixture({ engine });
});
after(() => f.close());

const fleet = async () =>
  (await f.app.inject({ method: "GET", url: "/api/fleet", headers: AUTH })).json() as {
    engine: { configured: boolean; health: { status?: string; healthy?: boolean; error?: string }; stats: object };
  };

test("the fleet view reports engine health and stats, probing the engine at most once per cache period", async () => {
  const first = await fleet();
  assert.equal(first.engine.configured, true);
  assert.equal(first.engine.health.status, "ok");
  assert.deepEqual(first.engine.stats, { queued: 2, inFlight: 1 });
  await fleet();
  await fleet();
  assert.equal(probes, 1);
  f.clock.advanceSync(5000);
  await fleet();
  assert.equal(probes, 2);
});

test("a failing health probe is shown as unhealthy, not as an API error", async () => {
  failing = true;
  f.clock.advanceSync(5000);
  const view = await fleet();
  assert.equal(view.engine.health.healthy, false);
  assert.match(String(view.engine.health.error), /connection refused/);
});

for (const stepMs of [-3_600_000, 365 * 86_400_000]) {
  test(`a wall clock step of ${stepMs} ms neither keeps nor drops the cached engine health`, async () => {
    const clock = new ManualClock();
    let healthProbes = 0;
    const deps: OperatorDeps = {
      ...idleOperatorDeps(),
      engine: {
        health: async () => {
          healthProbes++;
          return { status: "ok", replicas: [] };
        },
        stats: () => ({}),
      },
      apiToken: "fleet-clock-token-0123456789",
      clock,
    };
    const app = Fastify();
    registerFleetRoutes(app, deps);
    try {
      await app.inject({ method: "GET", url: "/fleet" });
      assert.equal(healthProbes, 1);
      // NTP steps the clock: the answer is cached for ENGINE_HEALTH_CACHE_MS all the same.
      clock.stepWall(stepMs);
      await app.inject({ method: "GET", url: "/fleet" });
      assert.equal(healthProbes, 1, "the cached answer is still fresh");
      clock.advanceSync(ENGINE_HEALTH_CACHE_MS);
      await app.inject({ method: "GET", url: "/fleet" });
      assert.equal(healthProbes, 2, "and stale once its time is over");
    } finally {
      await app.close();
    }
  });
}
