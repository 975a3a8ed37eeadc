/**
 * Every integer the API itself takes is bounded in its schema, at most 2^53-1: a value JSON carries but no version,
 * count or limit can be (`1e300` is an integral double) is a 400 naming the field, answered without waking the
 * device's agent.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { AUTH, type ApiFixture, createApiFixture } from "./helpers.ts";

type ErrorBody = { error: { code: string; message: string; field?: string } };

const JSON_HEADERS = { ...AUTH, "content-type": "application/json" };

describe("integer fields of the API", () => {
  let f: ApiFixture;
  before(async () => {
    f = await createApiFixture();
    await f.provision("bounds-1");
  });
  after(() => f.close());

  /** True once the device's agent ran: its database exists. */
  const agentWoke = () => fs.existsSync(path.join(f.runtimeDir, "agents", "bounds-1.db"));

  function assertRefused(res: { statusCode: number; body: string; json(): unknown }, field: string, message: RegExp) {
    assert.equal(res.statusCode, 400, res.body);
    const body = res.json() as ErrorBody;
    assert.equal(body.error.code, "BRIDGE_ERR_API_VALIDATION");
    assert.equal(body.error.field, field);
    assert.match(body.error.message, message);
  }

  test("an expectedVersion of 1e300 is a 400 naming the field, and the agent is not woken", async () => {
    const res = await f.app.inject({
      method: "PUT",
      url: "/api/devices/bounds-1/shadow/desired",
      headers: JSON_HEADERS,
      payload: '{"state":{"led":"on"},"expectedVersion":1e300}',
    });
    assertRefused(res, "body.expectedVersion", /^body\.expectedVersion must be <= 9007199254740991$/);
    assert.equal(agentWoke(), false);
  });

  test("the largest safe integer is still a version the API passes on (a stale one: 409)", async () => {
    const res = await f.app.inject({
      method: "PUT",
      url: "/api/devices/bounds-1/shadow/desired",
      headers: JSON_HEADERS,
      payload: '{"state":{"led":"on"},"expectedVersion":9007199254740991}',
    });
    assert.equal(res.statusCode, 409, res.body);
  });

  for (const url of [
    "/api/devices/bounds-1/telemetry?limit=1e300",
    "/api/devices/bounds-1/commands?limit=1e300",
    "/api/devices/bounds-1/conversation?limit=1e300",
  ]) {
    test(`a query limit of 1e300 is a 400 naming it: ${url.split("?")[0]}`, async () => {
      const res = await f.app.inject({ method: "GET", url, headers: AUTH });
      assertRefused(res, "querystring.limit", /^querystring\.limit must be <= 9007199254740991$/);
    });
  }

  test("a query limit above the cap but within 2^53-1 is still capped, as documented", async () => {
    const res = await f.app.inject({
      method: "GET",
      url: "/api/devices/bounds-1/commands?limit=100000",
      headers: AUTH,
    });
    assert.equal(res.statusCode, 200, res.body);
  });
});
