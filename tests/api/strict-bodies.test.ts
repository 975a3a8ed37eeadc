import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { AUTH, type ApiFixture, createApiFixture } from "./helpers.ts";

type ErrorBody = { error: { code: string; message: string; field?: string } };

describe("request bodies are validated strictly", () => {
  let f: ApiFixture;
  before(async () => {
    f = await createApiFixture();
    await f.provision("strict-1");
  });
  after(() => f.close());

  const send = (method: "POST" | "PUT", url: string, payload: object) =>
    f.app.inject({ method, url, headers: AUTH, payload });
  const get = (url: string) => f.app.inject({ method: "GET", url, headers: AUTH });

  function assertInvalid(res: { statusCode: number; json(): unknown }, field: string, message: string): void {
    assert.equal(res.statusCode, 400, JSON.stringify(res.json()));
    const body = res.json() as ErrorBody;
    assert.equal(body.error.code, "BRIDGE_ERR_API_VALIDATION");
    assert.equal(body.error.field, field);
    assert.equal(body.error.message, message);
  }

  test("an unknown field in a command is refused naming it, instead of queueing with the default TTL", async () => {
    const res = await send("POST", "/api/devices/strict-1/commands", { name: "reboot", ttl: 60 });
    assertInvalid(res, "body.ttl", "body.ttl is not a known field");
    const list = (await get("/api/devices/strict-1/commands")).json() as { commands: unknown[] };
    assert.deepEqual(list.commands, [], "nothing was queued");
  });

  test("unknown fields are refused on provisioning, desired state and approvals too", async () => {
    assertInvalid(
      await send("POST", "/api/devices", { id: "strict-2", secret: "mine" }),
      "body.secret",
      "body.secret is not a known field",
    );
    assert.equal((await get("/api/devices/strict-2")).statusCode, 404, "the device was not provisioned");
    assertInvalid(
      await send("PUT", "/api/devices/strict-1/shadow/desired", { state: { led: "on" }, version: 3 }),
      "body.version",
      "body.version is not a known field",
    );
    assertInvalid(
      await send("POST", "/api/approvals/strict-1/apr-1", { approve: true, note: "ok" }),
      "body.note",
      "body.note is not a known field",
    );
  });

  test("body values are not coerced: a string is not a boolean or an integer", async () => {
    const approve = await send("POST", "/api/approvals/strict-1/apr-1", { approve: "false" });
    assertInvalid(approve, "body.approve", "body.approve must be boolean");
    assertInvalid(
      await send("POST", "/api/devices/strict-1/commands", { name: "reboot", ttlSeconds: "60" }),
      "body.ttlSeconds",
      "body.ttlSeconds must be integer",
    );
    assertInvalid(
      await send("PUT", "/api/devices/strict-1/shadow/desired", { state: {}, expectedVersion: "0" }),
      "body.expectedVersion",
      "body.expectedVersion must be integer",
    );
    assertInvalid(
      await send("POST", "/api/devices/strict-1/commands", { name: 5 }),
      "body.name",
      "body.name must be string",
    );
  });

  test("a missing field is named plainly", async () => {
    assertInvalid(
      await send("PUT", "/api/devices/strict-1/shadow/desired", {}),
      "body.state",
      "body.state is required",
    );
    assertInvalid(await send("POST", "/api/devices/strict-1/commands", {}), "body.name", "body.name is required");
  });

  test("querystrings are still coerced from text, and a correct command still queues with its TTL", async () => {
    const ok = await send("POST", "/api/devices/strict-1/commands", { name: "reboot", ttlSeconds: 60 });
    assert.equal(ok.statusCode, 201);
    const list = await get("/api/devices/strict-1/commands?limit=5");
    assert.equal(list.statusCode, 200);
    assert.equal((list.json() as { commands: unknown[] }).commands.length, 1);
  });

  test('a JSON body sent as text/plain is a 415 asking for application/json, not a 400 "must be object"', async () => {
    const res = await f.app.inject({
      method: "POST",
      url: "/api/devices",
      headers: { ...AUTH, "content-type": "text/plain" },
      payload: '{"id":"strict-text"}',
    });
    assert.equal(res.statusCode, 415, res.body);
    assert.deepEqual(res.json(), {
      error: {
        code: "BRIDGE_ERR_API_VALIDATION",
        message: "send a JSON body with content-type application/json",
        field: "body",
      },
    });
    assert.equal((await get("/api/devices/strict-text")).statusCode, 404, "the device was not provisioned");
  });
});
