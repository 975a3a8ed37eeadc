import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Agent } from "../../agents/index.ts";
import { AUTH, type ApiFixture, createApiFixture } from "./helpers.ts";

/** A device served by an agent class of its own, not DeviceAgent: it has no getStatus. */
class PlainAgent extends Agent {}

describe("a device whose agent is not a DeviceAgent", () => {
  let f: ApiFixture;
  before(async () => {
    f = await createApiFixture({ agentClasses: [{ pattern: "plain-*", agentClass: PlainAgent }] });
  });
  after(() => f.close());

  test("GET /api/devices/:id answers with the registry record and a null agent status, not 404", async () => {
    await f.provision("plain-1");
    const res = await f.app.inject({ method: "GET", url: "/api/devices/plain-1", headers: AUTH });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json() as { id: string; online: boolean; status: unknown };
    assert.equal(body.id, "plain-1");
    assert.equal(body.online, false);
    assert.equal(body.status, null);
  });

  test("an unknown device is still a 404", async () => {
    const res = await f.app.inject({ method: "GET", url: "/api/devices/plain-none", headers: AUTH });
    assert.equal(res.statusCode, 404);
  });
});
