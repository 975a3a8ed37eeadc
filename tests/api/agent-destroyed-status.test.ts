/**
 * An operator request waiting for a device's agent when `DELETE /api/devices/:id` destroys that agent answers
 * `410 BRIDGE_ERR_AGENT_DESTROYED`: the device it asked about is gone, so a client must not retry it as it would a 503.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { InboundMessage } from "../../agents/host.ts";
import { type Connection, DeviceAgent } from "../../agents/index.ts";
import { AUTH, type ApiFixture, createApiFixture } from "./helpers.ts";

/** Holds the agent inside a device message until the test lets it go on, as a long handler would. */
let entered = false;
let release: () => void = () => {};
class HeldDevice extends DeviceAgent {
  override async onMessage(conn: Connection, message: InboundMessage): Promise<void> {
    entered = true;
    await new Promise<void>((resolve) => {
      release = resolve;
    });
    await super.onMessage(conn, message);
  }
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !check(); i++) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(check(), "the condition was never met");
}

describe("an operator request whose device's agent is destroyed while it waits", () => {
  let f: ApiFixture;
  before(async () => {
    f = await createApiFixture({ agentClasses: [{ pattern: "held-*", agentClass: HeldDevice }] });
  });
  after(() => f.close());

  test("answers 410 BRIDGE_ERR_AGENT_DESTROYED, not a 503 that asks to retry", async () => {
    await f.provision("held-1");
    const device = await f.device("held-1");
    const message = device.send({ channel: "telemetry", frame: { r: { temp: 1 } } });
    await until(() => entered);
    // Waits in the mailbox behind the message the agent is in the middle of.
    const listing = f.app.inject({ method: "GET", url: "/api/devices/held-1/commands", headers: AUTH });
    const removal = f.app.inject({ method: "DELETE", url: "/api/devices/held-1", headers: AUTH });
    await new Promise((resolve) => setImmediate(resolve));
    release();
    const [listed, removed] = await Promise.all([listing, removal]);
    assert.equal(removed.statusCode, 200, removed.body);
    assert.equal(listed.statusCode, 410, listed.body);
    const body = listed.json() as { error: { code: string; message: string } };
    assert.equal(body.error.code, "BRIDGE_ERR_AGENT_DESTROYED");
    assert.equal((await message).status, "committed", "the message the agent was in finished");
  });
});
