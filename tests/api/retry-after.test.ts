/**
 * A `503` whose failure says when to retry carries a `Retry-After` header in whole seconds, rounded up (RFC 9110
 * section 10.2.3), so an HTTP client or proxy waits that long instead of retrying at once: the agent whose onStart
 * keeps timing out answers BRIDGE_ERR_AGENT_START_TIMEOUT with the time to its next try (`details.retryInMs`). Before,
 * the 503 said nothing of when. Driven through the real HTTP server.
 */
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { DeviceAgent } from "../../agents/index.ts";
import { START_RETRY_FIRST_MS } from "../../agents/start-backoff.ts";
import { BridgeError } from "../../errors/index.ts";
import { AUTH, type ApiFixture, createApiFixture } from "./helpers.ts";
import { closeUnstuck, START_TIMEOUT_MS, stuckStartAgent } from "./stuck-start-agent.ts";

const { agentClass: StuckDevice, stuck } = stuckStartAgent();

/** An agent class's own failures that say when to retry: one the API answers 503, one it answers 500. */
class BusyDevice extends DeviceAgent {
  override getShadow(): never {
    throw new BridgeError("BRIDGE_ERR_THERMO_UNAVAILABLE", "warming up", { retryInMs: 2_500 });
  }
  override getStatus(): never {
    throw new BridgeError("BRIDGE_ERR_THERMO_BROKEN", "broken", { retryInMs: 2_500 });
  }
}

describe("a 503 that says when to retry", () => {
  let f: ApiFixture;
  let base: string;
  before(async () => {
    f = await createApiFixture({
      agentClasses: [
        { pattern: "stuck-*", agentClass: StuckDevice },
        { pattern: "busy-*", agentClass: BusyDevice },
      ],
    });
    await f.app.listen({ host: "127.0.0.1", port: 0 });
    base = `http://127.0.0.1:${(f.app.server.address() as AddressInfo).port}`;
  });
  after(() => closeUnstuck(f, stuck));

  const shadow = (id: string) => fetch(`${base}/api/devices/${id}/shadow`, { headers: AUTH });

  test("carries Retry-After, the time to the agent's next start in whole seconds rounded up", async () => {
    await f.provision("stuck-1");
    const waiting = shadow("stuck-1");
    // Let the request reach the agent (its wake runs onStart) before the clock moves.
    for (let i = 0; i < 500 && stuck.starts === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(stuck.starts, 1);
    await f.clock.advance(START_TIMEOUT_MS);
    await f.clock.advance(START_TIMEOUT_MS);
    const failed = await waiting;
    assert.equal(failed.status, 503);
    assert.equal(((await failed.json()) as { error: { code: string } }).error.code, "BRIDGE_ERR_AGENT_START_TIMEOUT");
    assert.equal(failed.headers.get("retry-after"), String(START_RETRY_FIRST_MS / 1000));

    // 1 ms later the next try is 999 ms away: still 1 s, never 0 (a client would retry at once).
    await f.clock.advance(1);
    const during = await shadow("stuck-1");
    assert.equal(during.status, 503);
    assert.equal(during.headers.get("retry-after"), "1");
    await during.arrayBuffer();
  });

  test("an agent's own 503 with details.retryInMs carries it too; a 500 or a 404 carries none", async () => {
    await f.provision("busy-1");
    const busy = await shadow("busy-1");
    assert.equal(busy.status, 503);
    assert.equal(busy.headers.get("retry-after"), "3");
    await busy.arrayBuffer();

    const broken = await fetch(`${base}/api/devices/busy-1`, { headers: AUTH });
    assert.equal(broken.status, 500);
    assert.equal(broken.headers.get("retry-after"), null);
    await broken.arrayBuffer();

    const missing = await shadow("nobody-1");
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get("retry-after"), null);
    await missing.arrayBuffer();
  });
});
