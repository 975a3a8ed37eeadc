import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { AUTH, type ApiFixture, createApiFixture, TOKEN } from "./helpers.ts";

describe("operator REST API", () => {
  let f: ApiFixture;
  before(async () => {
    f = await createApiFixture();
  });
  after(() => f.close());

  const get = (url: string) => f.app.inject({ method: "GET", url, headers: AUTH });
  const send = (method: "POST" | "PUT" | "DELETE", url: string, payload?: unknown) =>
    f.app.inject({ method, url, headers: AUTH, ...(payload === undefined ? {} : { payload: payload as object }) });

  function assertError(res: { statusCode: number; json(): unknown }, status: number, code: string, field?: string) {
    assert.equal(res.statusCode, status);
    const body = res.json() as { error: { code: string; message: string; field?: string } };
    assert.equal(body.error.code, code);
    assert.equal(typeof body.error.message, "string");
    if (field !== undefined) assert.equal(body.error.field, field);
  }

  test("every route refuses a missing or wrong token with 401 and the error shape", async () => {
    const routes = [
      ["GET", "/api/devices"],
      ["GET", "/api/devices/x"],
      ["POST", "/api/devices"],
      ["DELETE", "/api/devices/x"],
      ["POST", "/api/devices/x/secret"],
      ["GET", "/api/devices/x/shadow"],
      ["PUT", "/api/devices/x/shadow/desired"],
      ["POST", "/api/devices/x/commands"],
      ["GET", "/api/devices/x/commands"],
      ["GET", "/api/devices/x/commands/c"],
      ["GET", "/api/devices/x/telemetry"],
      ["GET", "/api/devices/x/conversation"],
      ["GET", "/api/approvals"],
      ["POST", "/api/approvals/x/a"],
      ["GET", "/api/fleet"],
      ["GET", "/openapi.json"],
    ] as const;
    for (const [method, url] of routes) {
      const none = await f.app.inject({ method, url });
      assertError(none, 401, "BRIDGE_ERR_API_UNAUTHORIZED");
      assert.match(String(none.headers["www-authenticate"]), /^Bearer/);
      const wrong = await f.app.inject({ method, url, headers: { authorization: `Bearer ${TOKEN}x` } });
      assertError(wrong, 401, "BRIDGE_ERR_API_UNAUTHORIZED");
      const basic = await f.app.inject({ method, url, headers: { authorization: `Basic ${TOKEN}` } });
      assertError(basic, 401, "BRIDGE_ERR_API_UNAUTHORIZED");
    }
  });

  test("the OpenAPI document lists every route with its parameters and the bearer scheme", async () => {
    const res = await get("/openapi.json");
    assert.equal(res.statusCode, 200);
    const doc = res.json() as {
      openapi: string;
      paths: Record<string, Record<string, { parameters?: Array<{ name: string }> }>>;
    };
    assert.equal(doc.openapi, "3.0.3");
    for (const path of [
      "/api/devices",
      "/api/devices/{id}",
      "/api/devices/{id}/secret",
      "/api/devices/{id}/shadow",
      "/api/devices/{id}/shadow/desired",
      "/api/devices/{id}/commands",
      "/api/devices/{id}/commands/{cmdId}",
      "/api/devices/{id}/telemetry",
      "/api/devices/{id}/conversation",
      "/api/approvals",
      "/api/approvals/{deviceId}/{approvalId}",
      "/api/fleet",
      "/metrics",
    ]) {
      assert.ok(doc.paths[path] !== undefined, `missing ${path}`);
    }
    const telemetry = doc.paths["/api/devices/{id}/telemetry"]?.get?.parameters?.map((p) => p.name);
    assert.deepEqual(telemetry?.sort(), ["cursor", "from", "id", "limit", "metric", "order", "to"]);
    // A device's routes list the 410 of a device removed while the request waited for its agent.
    const responses = (doc.paths["/api/devices/{id}/commands"]?.get as { responses?: Record<string, unknown> })
      ?.responses;
    assert.ok(responses?.["410"] !== undefined, "410 is documented for a device's routes");
    assert.equal(
      (doc.paths["/api/devices"]?.get as { responses?: Record<string, unknown> })?.responses?.["410"],
      undefined,
    );
  });

  test("provisioning answers 201 with the secret once, 409 for a taken id and 400 naming a bad field", async () => {
    const res = await send("POST", "/api/devices", { id: "prov-1", codec: "cbor" });
    assert.equal(res.statusCode, 201);
    const body = res.json() as { device: { id: string; codec: string; online: boolean }; secret: string };
    assert.equal(body.device.id, "prov-1");
    assert.equal(body.device.codec, "cbor");
    assert.equal(body.device.online, false);
    assert.ok(body.secret.length >= 16);
    assert.equal(res.headers["cache-control"], "no-store");
    assert.equal((await f.registry.verify("prov-1", body.secret)).status, "ok");
    assertError(await send("POST", "/api/devices", { id: "prov-1" }), 409, "BRIDGE_ERR_API_DEVICE_EXISTS", "body.id");
    assertError(await send("POST", "/api/devices", { id: "bad id!" }), 400, "BRIDGE_ERR_API_VALIDATION", "body.id");
    assertError(await send("POST", "/api/devices", { codec: "json" }), 400, "BRIDGE_ERR_API_VALIDATION", "body.id");
    assertError(
      await send("POST", "/api/devices", { id: "p2", codec: "xml" }),
      400,
      "BRIDGE_ERR_API_VALIDATION",
      "body.codec",
    );
    const malformed = await f.app.inject({
      method: "POST",
      url: "/api/devices",
      headers: { ...AUTH, "content-type": "application/json" },
      payload: "{nope",
    });
    assertError(malformed, 400, "BRIDGE_ERR_API_VALIDATION");
  });

  test("rotating a secret returns a new one once and the old one stops working", async () => {
    const created = (await send("POST", "/api/devices", { id: "rot-1" })).json() as { secret: string };
    const res = await send("POST", "/api/devices/rot-1/secret");
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers["cache-control"], "no-store");
    const { secret } = res.json() as { secret: string };
    assert.notEqual(secret, created.secret);
    assert.equal((await f.registry.verify("rot-1", secret)).status, "ok");
    assert.equal((await f.registry.verify("rot-1", created.secret)).status, "bad-secret");
    assertError(await send("POST", "/api/devices/nobody/secret"), 404, "BRIDGE_ERR_API_DEVICE_NOT_FOUND", "params.id");
  });

  test("the device list shows online status, last seen and last telemetry, and filters by online", async () => {
    await f.provision("list-a");
    await f.provision("list-b");
    const dev = await f.device("list-a");
    const list = (await get("/api/devices")).json() as { devices: Array<{ id: string; online: boolean }> };
    const a = list.devices.find((d) => d.id === "list-a");
    const b = list.devices.find((d) => d.id === "list-b");
    assert.equal(a?.online, true);
    assert.equal(b?.online, false);
    const onlineOnly = (await get("/api/devices?online=true")).json() as { devices: Array<{ id: string }> };
    assert.deepEqual(
      onlineOnly.devices.map((d) => d.id),
      ["list-a"],
    );
    assertError(await get("/api/devices?online=maybe"), 400, "BRIDGE_ERR_API_VALIDATION", "querystring.online");
    const found = (await get("/api/devices?q=LIST-")).json() as { devices: Array<{ id: string }>; matched: number };
    assert.deepEqual(
      found.devices.map((d) => d.id),
      ["list-a", "list-b"],
    );
    assert.equal(found.matched, 2);
    const page = (await get("/api/devices?q=list-&limit=1&offset=1")).json() as { devices: Array<{ id: string }> };
    assert.deepEqual(
      page.devices.map((d) => d.id),
      ["list-b"],
    );
    const all = (await get("/api/devices")).json() as { devices: Array<{ id: string }> };
    const second = (await get("/api/devices?limit=1&offset=1")).json() as {
      devices: Array<{ id: string }>;
      total: number;
      matched: number;
    };
    assert.equal(second.total, 1, "total is the page's size");
    assert.equal(second.matched, all.devices.length, "without filters, matched is the fleet's size");
    assert.deepEqual(second.devices, [all.devices[1]]);
    assertError(await get("/api/devices?limit=0"), 400, "BRIDGE_ERR_API_VALIDATION", "querystring.limit");
    await dev.close();
  });

  test("an offset beyond what SQLite can page is a 400 naming it, not a 500", async () => {
    for (const offset of ["1e20", "99999999999999999999"]) {
      assertError(await get(`/api/devices?offset=${offset}`), 400, "BRIDGE_ERR_API_VALIDATION", "querystring.offset");
    }
    const far = (await get(`/api/devices?offset=${Number.MAX_SAFE_INTEGER}`)).json() as { devices: unknown[] };
    assert.deepEqual(far.devices, []);
  });

  test('the ids "." and ".." are a 400 naming the field, in words rather than as a pattern', async () => {
    for (const id of [".", ".."]) {
      const res = await send("POST", "/api/devices", { id });
      assertError(res, 400, "BRIDGE_ERR_API_VALIDATION", "body.id");
      const { message } = (res.json() as { error: { message: string } }).error;
      assert.equal(message, 'body.id must be 1 to 64 characters of A-Z a-z 0-9 _ . -, and not "." or ".."', id);
    }
    assert.equal(f.registry.get(".."), undefined);
  });

  test("one device shows the agent's status and the server's time; an unknown device is 404 and a malformed id 400", async () => {
    await f.provision("one-1");
    const dev = await f.device("one-1");
    await dev.send({ channel: "hello", frame: { fw: "1.2.3", codec: "json" } });
    const res = await get("/api/devices/one-1");
    assert.equal(res.statusCode, 200);
    const body = res.json() as {
      id: string;
      online: boolean;
      status: { firmware: string; online: boolean };
      serverTime: number;
    };
    assert.equal(body.id, "one-1");
    assert.equal(body.online, true);
    assert.equal(body.status.firmware, "1.2.3");
    // The dashboard measures the device's last-seen age against it, as the fleet table does with GET /api/fleet's.
    assert.equal(body.serverTime, f.clock.now());
    assertError(await get("/api/devices/nobody"), 404, "BRIDGE_ERR_API_DEVICE_NOT_FOUND", "params.id");
    assertError(await get(`/api/devices/${"x".repeat(65)}`), 400, "BRIDGE_ERR_API_VALIDATION", "params.id");
    await dev.close();
  });

  test("desired state is versioned, a stale expectedVersion is a 409, and bad bodies name the field", async () => {
    await f.provision("shadow-1");
    const initial = (await get("/api/devices/shadow-1/shadow")).json() as { desired: { version: number } };
    assert.equal(initial.desired.version, 0);
    const set = await send("PUT", "/api/devices/shadow-1/shadow/desired", { state: { led: "on" }, expectedVersion: 0 });
    assert.equal(set.statusCode, 200);
    assert.deepEqual(set.json(), { status: "ok", version: 1 });
    const shadow = (await get("/api/devices/shadow-1/shadow")).json() as {
      desired: { version: number; state: object };
      delta: object;
    };
    assert.deepEqual(shadow.desired, { version: 1, state: { led: "on" } });
    assert.deepEqual(shadow.delta, { led: "on" });
    const stale = await send("PUT", "/api/devices/shadow-1/shadow/desired", {
      state: { led: "off" },
      expectedVersion: 0,
    });
    assertError(stale, 409, "BRIDGE_ERR_API_SHADOW_CONFLICT", "body.expectedVersion");
    assert.match((stale.json() as { error: { message: string } }).error.message, /current version 1/);
    assertError(
      await send("PUT", "/api/devices/shadow-1/shadow/desired", {}),
      400,
      "BRIDGE_ERR_API_VALIDATION",
      "body.state",
    );
    assertError(
      await send("PUT", "/api/devices/shadow-1/shadow/desired", { state: 5 }),
      400,
      "BRIDGE_ERR_API_VALIDATION",
      "body.state",
    );
    assertError(
      await send("PUT", "/api/devices/shadow-1/shadow/desired", { state: {}, expectedVersion: -1 }),
      400,
      "BRIDGE_ERR_API_VALIDATION",
      "body.expectedVersion",
    );
    assertError(
      await send("PUT", "/api/devices/ghost/shadow/desired", { state: {} }),
      404,
      "BRIDGE_ERR_API_DEVICE_NOT_FOUND",
    );
  });

  test("commands are queued with 201, listed, read one by one, and bad input names the field", async () => {
    await f.provision("cmd-1");
    const res = await send("POST", "/api/devices/cmd-1/commands", {
      name: "reboot",
      args: { delay: 5 },
      ttlSeconds: 60,
    });
    assert.equal(res.statusCode, 201);
    const cmd = res.json() as { id: string; name: string; state: string; args: unknown; maxAttempts: number };
    assert.equal(cmd.name, "reboot");
    assert.equal(cmd.state, "QUEUED");
    assert.deepEqual(cmd.args, { delay: 5 });
    const list = (await get("/api/devices/cmd-1/commands")).json() as { commands: Array<{ id: string }> };
    assert.deepEqual(
      list.commands.map((c) => c.id),
      [cmd.id],
    );
    const queued = (await get("/api/devices/cmd-1/commands?state=QUEUED&limit=5")).json() as { commands: unknown[] };
    assert.equal(queued.commands.length, 1);
    const one = await get(`/api/devices/cmd-1/commands/${cmd.id}`);
    assert.equal(one.statusCode, 200);
    assert.equal((one.json() as { id: string }).id, cmd.id);
    assertError(
      await get("/api/devices/cmd-1/commands/cmd-nope"),
      404,
      "BRIDGE_ERR_API_COMMAND_NOT_FOUND",
      "params.cmdId",
    );
    assertError(await send("POST", "/api/devices/cmd-1/commands", {}), 400, "BRIDGE_ERR_API_VALIDATION", "body.name");
    assertError(
      await send("POST", "/api/devices/cmd-1/commands", { name: "x", ttlSeconds: 0 }),
      400,
      "BRIDGE_ERR_API_VALIDATION",
      "body.ttlSeconds",
    );
    assertError(
      await get("/api/devices/cmd-1/commands?state=DONE"),
      400,
      "BRIDGE_ERR_API_VALIDATION",
      "querystring.state",
    );
  });

  test("a command's ackTimeoutSeconds reaches the agent (0: none), and one out of range names the field", async () => {
    await f.provision("cmd-2");
    const timeoutOf = async (body: Record<string, unknown>): Promise<number> => {
      const res = await send("POST", "/api/devices/cmd-2/commands", { name: "reboot", ...body });
      assert.equal(res.statusCode, 201, res.body);
      return (res.json() as { ackTimeoutMs: number }).ackTimeoutMs;
    };
    assert.equal(await timeoutOf({ ackTimeoutSeconds: 30 }), 30_000);
    assert.equal(await timeoutOf({ ackTimeoutSeconds: 0 }), 0);
    assert.equal(await timeoutOf({}), 300_000, "the class's commandAckTimeoutMs");
    for (const bad of [-1, 30 * 86400 + 1, 1.5]) {
      assertError(
        await send("POST", "/api/devices/cmd-2/commands", { name: "x", ackTimeoutSeconds: bad }),
        400,
        "BRIDGE_ERR_API_VALIDATION",
        "body.ackTimeoutSeconds",
      );
    }
  });

  test("telemetry is queried by range and metric, oldest first, with the limit capped and bad bounds refused", async () => {
    await f.provision("tel-1");
    const dev = await f.device("tel-1");
    const t0 = f.clock.now();
    for (let i = 0; i < 5; i++) {
      const r = await dev.send({
        channel: "telemetry",
        frame: { ts: t0 - 5000 + i * 1000, r: { temp: 20 + i, hum: 40 } },
      });
      assert.equal(r.status, "committed");
    }
    const all = (await get("/api/devices/tel-1/telemetry?metric=temp")).json() as {
      readings: Array<{ ts: number; metric: string; value: number }>;
      limit: number;
      order: string;
    };
    assert.deepEqual(
      all.readings.map((r) => r.value),
      [20, 21, 22, 23, 24],
    );
    assert.equal(all.order, "asc");
    const newest = (await get("/api/devices/tel-1/telemetry?metric=temp&order=desc&limit=2")).json() as {
      readings: Array<{ value: number }>;
    };
    assert.deepEqual(
      newest.readings.map((r) => r.value),
      [24, 23],
    );
    const ranged = (
      await get(`/api/devices/tel-1/telemetry?metric=temp&from=${t0 - 4000}&to=${new Date(t0 - 2000).toISOString()}`)
    ).json() as {
      readings: Array<{ value: number }>;
    };
    assert.deepEqual(
      ranged.readings.map((r) => r.value),
      [21, 22, 23],
    );
    const capped = (await get("/api/devices/tel-1/telemetry?limit=999999")).json() as {
      limit: number;
      readings: unknown[];
    };
    assert.equal(capped.limit, 5000);
    assert.equal(capped.readings.length, 10);
    assertError(
      await get("/api/devices/tel-1/telemetry?from=yesterday"),
      400,
      "BRIDGE_ERR_API_VALIDATION",
      "query.from",
    );
    // Text that V8's lenient Date.parse would read as some date in 2001 is neither ms nor ISO 8601.
    for (const bad of ["-5", "Jan%205", "1%202", "5.5"]) {
      assertError(
        await get(`/api/devices/tel-1/telemetry?from=${bad}`),
        400,
        "BRIDGE_ERR_API_VALIDATION",
        "query.from",
      );
    }
    const iso = (
      await get("/api/devices/tel-1/telemetry?from=2026-01-15T11:59:55%2B00:00&to=2026-01-15%2012:00:00Z")
    ).json() as { from: number; to: number };
    assert.deepEqual([iso.from, iso.to], [t0 - 5000, t0]);
    assertError(
      await get(`/api/devices/tel-1/telemetry?from=${t0}&to=${t0 - 1}`),
      400,
      "BRIDGE_ERR_API_VALIDATION",
      "query.from",
    );
    assertError(
      await get("/api/devices/tel-1/telemetry?limit=0"),
      400,
      "BRIDGE_ERR_API_VALIDATION",
      "querystring.limit",
    );
    assertError(
      await get("/api/devices/tel-1/telemetry?metric=a%20b"),
      400,
      "BRIDGE_ERR_API_VALIDATION",
      "querystring.metric",
    );
    const fleetRow = (
      (await get("/api/devices")).json() as {
        devices: Array<{ id: string; lastSeenAt: number | null; lastTelemetry: { readings: unknown } | null }>;
      }
    ).devices.find((d) => d.id === "tel-1");
    assert.equal(fleetRow?.lastSeenAt, t0);
    assert.deepEqual(fleetRow?.lastTelemetry?.readings, { temp: 24, hum: 40 });
    await dev.close();
  });

  test("the conversation of a device without reasoning is empty with zero usage", async () => {
    await f.provision("conv-1");
    const res = await get("/api/devices/conv-1/conversation?limit=10");
    assert.equal(res.statusCode, 200);
    const body = res.json() as { messages: unknown[]; usage: { requests: number } };
    assert.deepEqual(body.messages, []);
    assert.equal(body.usage.requests, 0);
  });

  test("approvals are listed across the fleet and resolving an unknown one is a 404 naming it", async () => {
    await f.provision("appr-1");
    const list = (await get("/api/approvals")).json() as { approvals: unknown[]; total: number };
    assert.deepEqual(list, { approvals: [], total: 0 });
    assertError(
      await send("POST", "/api/approvals/appr-1/apr-missing", { approve: true }),
      404,
      "BRIDGE_ERR_API_APPROVAL_NOT_FOUND",
      "params.approvalId",
    );
    assertError(
      await send("POST", "/api/approvals/appr-1/apr-1", {}),
      400,
      "BRIDGE_ERR_API_VALIDATION",
      "body.approve",
    );
    assertError(
      await send("POST", "/api/approvals/nobody/apr-1", { approve: false }),
      404,
      "BRIDGE_ERR_API_DEVICE_NOT_FOUND",
      "params.deviceId",
    );
  });

  test("the fleet overview counts devices and agents and reports no engine when none is configured", async () => {
    const body = (await get("/api/fleet")).json() as {
      devices: { registered: number; online: number };
      agents: { active: number };
      rates: { windowSeconds: number; history: unknown[] };
      engine: { configured: boolean };
      approvalsPending: number;
      serverTime: number;
    };
    assert.equal(body.devices.registered, f.registry.list().length);
    assert.equal(body.devices.online, f.online.size);
    assert.equal(typeof body.agents.active, "number");
    assert.equal(body.rates.windowSeconds, 60);
    assert.equal(body.rates.history.length, 60);
    assert.equal(body.engine.configured, false);
    assert.equal(body.approvalsPending, 0);
    assert.equal(body.serverTime, f.clock.now());
  });

  test("deleting a device removes it from the registry and its agent, says so, then it is 404", async () => {
    await f.provision("del-1");
    await send("PUT", "/api/devices/del-1/shadow/desired", { state: { a: 1 } });
    const res = await send("DELETE", "/api/devices/del-1");
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { id: "del-1", removed: { record: true, agentData: true } });
    assert.equal(f.registry.get("del-1"), undefined);
    assertError(await get("/api/devices/del-1"), 404, "BRIDGE_ERR_API_DEVICE_NOT_FOUND");
    assertError(await send("DELETE", "/api/devices/del-1"), 404, "BRIDGE_ERR_API_DEVICE_NOT_FOUND");
    // Re-provisioned under the same id, the device starts from an empty shadow.
    await f.provision("del-1");
    const shadow = (await get("/api/devices/del-1/shadow")).json() as { desired: { version: number } };
    assert.equal(shadow.desired.version, 0);
  });

  test("a device re-provisioned after deletion shows no last-seen time or readings of the deleted one", async () => {
    await f.provision("del-2");
    const dev = await f.device("del-2");
    await dev.send({ channel: "telemetry", frame: { r: { temp: 99 } } });
    await dev.close();
    assert.equal((await send("DELETE", "/api/devices/del-2")).statusCode, 200);
    await f.provision("del-2");
    const row = (await get("/api/devices/del-2")).json() as { lastSeenAt: number | null; lastTelemetry: unknown };
    assert.equal(row.lastSeenAt, null);
    assert.equal(row.lastTelemetry, null);
  });

  test("the agent data of a device whose record another process removed (devices rm) is removed by DELETE", async () => {
    await f.provision("orphan-1");
    await send("PUT", "/api/devices/orphan-1/shadow/desired", { state: { a: 1 } });
    const dev = await f.device("orphan-1");
    await dev.send({ channel: "telemetry", frame: { r: { temp: 20 } } });
    await dev.close();
    // What `agent-bridge devices rm` does: only the registry record goes.
    assert.equal(f.registry.remove("orphan-1"), true);
    const file = path.join(f.runtimeDir, "agents", "orphan-1.db");
    assert.equal(fs.existsSync(file), true);
    assertError(await get("/api/devices/orphan-1"), 404, "BRIDGE_ERR_API_DEVICE_NOT_FOUND");

    const res = await send("DELETE", "/api/devices/orphan-1");
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { id: "orphan-1", removed: { record: false, agentData: true } });
    assert.equal(fs.existsSync(file), false);
    assertError(await send("DELETE", "/api/devices/orphan-1"), 404, "BRIDGE_ERR_API_DEVICE_NOT_FOUND");
    // Provisioned again, the id starts from nothing: no shadow, no last-seen time or readings.
    await f.provision("orphan-1");
    const row = (await get("/api/devices/orphan-1")).json() as { lastSeenAt: number | null; lastTelemetry: unknown };
    assert.deepEqual([row.lastSeenAt, row.lastTelemetry], [null, null]);
    const shadow = (await get("/api/devices/orphan-1/shadow")).json() as { desired: { version: number } };
    assert.equal(shadow.desired.version, 0);
  });

  test("deleting an id with neither a record nor agent data is 404 and creates nothing", async () => {
    const res = await send("DELETE", "/api/devices/never-1");
    assertError(res, 404, "BRIDGE_ERR_API_DEVICE_NOT_FOUND", "params.id");
    assert.match((res.json() as { error: { message: string } }).error.message, /no agent data/);
    assert.equal(fs.existsSync(path.join(f.runtimeDir, "agents", "never-1.db")), false);
  });

  test("a body over the API limit is refused with 413 before any agent sees it", async () => {
    await f.provision("big-1");
    const huge = { state: { blob: "x".repeat(300 * 1024) } };
    assertError(await send("PUT", "/api/devices/big-1/shadow/desired", huge), 413, "BRIDGE_ERR_API_PAYLOAD_TOO_LARGE");
    const shadow = (await get("/api/devices/big-1/shadow")).json() as { desired: { version: number } };
    assert.equal(shadow.desired.version, 0);
  });

  test("a body nested deeper than device frames may be is refused with 400 naming the body", async () => {
    await f.provision("deep-1");
    const res = await f.app.inject({
      method: "PUT",
      url: "/api/devices/deep-1/shadow/desired",
      headers: { ...AUTH, "content-type": "application/json" },
      payload: `{"state":{"a":${"[".repeat(20000)}${"]".repeat(20000)}}}`,
    });
    assertError(res, 400, "BRIDGE_ERR_API_VALIDATION", "body");
    const ok = await send("PUT", "/api/devices/deep-1/shadow/desired", { state: { a: { b: { c: [1, [2, [3]]] } } } });
    assert.equal(ok.statusCode, 200);
  });

  test("an unknown API path is a JSON 404", async () => {
    assertError(await get("/api/nothing-here"), 404, "BRIDGE_ERR_API_NOT_FOUND");
  });
});
