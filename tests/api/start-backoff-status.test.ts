/**
 * An operator request to a device whose agent's onStart keeps timing out (agents/start-backoff.ts) answers
 * `503 BRIDGE_ERR_AGENT_START_TIMEOUT`: the bridge is up and the same request may succeed later. Once onStart settles
 * again, the same request answers 200.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { START_RETRY_FIRST_MS } from "../../agents/start-backoff.ts";
import { AUTH, type ApiFixture, createApiFixture } from "./helpers.ts";
import { closeUnstuck, START_TIMEOUT_MS, stuckStartAgent } from "./stuck-start-agent.ts";

const { agentClass: StuckDevice, stuck } = stuckStartAgent();

describe("an operator request to a device whose agent's onStart keeps timing out", () => {
  let f: ApiFixture;
  before(async () => {
    f = await createApiFixture({ agentClasses: [{ pattern: "stuck-*", agentClass: StuckDevice }] });
  });
  after(() => closeUnstuck(f, stuck));

  test("answers 503 BRIDGE_ERR_AGENT_START_TIMEOUT, then 200 once onStart settles", async () => {
    await f.provision("stuck-1");
    const shadow = { method: "GET" as const, url: "/api/devices/stuck-1/shadow", headers: AUTH };
    const waiting = f.app.inject(shadow);
    await f.clock.advance(START_TIMEOUT_MS);
    await f.clock.advance(START_TIMEOUT_MS);
    const failed = await waiting;
    assert.equal(failed.statusCode, 503, failed.body);
    assert.equal((failed.json() as { error: { code: string } }).error.code, "BRIDGE_ERR_AGENT_START_TIMEOUT");

    const during = await f.app.inject(shadow);
    assert.equal(during.statusCode, 503, "during the backoff: at once");
    assert.equal(stuck.starts, 2);

    stuck.hanging = false;
    await f.clock.advance(START_RETRY_FIRST_MS);
    assert.equal(stuck.starts, 3, "the next try started the agent");
    const ok = await f.app.inject(shadow);
    assert.equal(ok.statusCode, 200, ok.body);
  });
});
