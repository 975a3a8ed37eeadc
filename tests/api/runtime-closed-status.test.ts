/**
 * Once the agent runtime has shut down (the API mounted on its own outlives it; the bridge closes its HTTP server
 * first), every route that needs the runtime answers 503 BRIDGE_ERR_RUNTIME_CLOSED, never a 500: the bridge is
 * stopping, not broken, and the same request may succeed once it is back. A refused request changes nothing.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { AUTH, type ApiFixture, createApiFixture } from "./helpers.ts";

/** Every /api route that reads or changes what the runtime keeps, with a request that would otherwise succeed. */
const RUNTIME_ROUTES: ReadonlyArray<{ method: "GET" | "POST" | "PUT" | "DELETE"; url: string; payload?: object }> = [
  { method: "GET", url: "/api/devices/dev-1" },
  { method: "GET", url: "/api/devices/dev-1/shadow" },
  { method: "PUT", url: "/api/devices/dev-1/shadow/desired", payload: { state: { a: 1 } } },
  { method: "POST", url: "/api/devices/dev-1/commands", payload: { name: "reboot" } },
  { method: "GET", url: "/api/devices/dev-1/commands" },
  { method: "GET", url: "/api/devices/dev-1/commands/cmd-1" },
  { method: "GET", url: "/api/devices/dev-1/telemetry" },
  { method: "GET", url: "/api/devices/dev-1/conversation" },
  { method: "GET", url: "/api/approvals" },
  { method: "POST", url: "/api/approvals/dev-1/ap-1", payload: { approve: true } },
  { method: "GET", url: "/api/fleet" },
  { method: "DELETE", url: "/api/devices/dev-1" },
  { method: "DELETE", url: "/api/devices/never-registered" },
];

describe("the API after the agent runtime has shut down", () => {
  let f: ApiFixture;
  before(async () => {
    f = await createApiFixture();
    await f.provision("dev-1");
    // A device with agent data (its database), for the refused DELETE below to leave alone.
    await f.provision("dev-2");
    await (await f.device("dev-2")).close();
    await f.runtime.shutdown();
  });
  after(() => f.close());

  test("every route that needs the runtime answers 503 BRIDGE_ERR_RUNTIME_CLOSED, with no Retry-After", async () => {
    for (const { method, url, payload } of RUNTIME_ROUTES) {
      const res = await f.app.inject({ method, url, headers: AUTH, ...(payload === undefined ? {} : { payload }) });
      const where = `${method} ${url}: ${res.body}`;
      assert.equal(res.statusCode, 503, where);
      const body = res.json() as { error: { code: string; message: string } };
      assert.deepEqual(Object.keys(body.error).sort(), ["code", "message"], where);
      assert.equal(body.error.code, "BRIDGE_ERR_RUNTIME_CLOSED", where);
      assert.equal(res.headers["retry-after"], undefined, where);
    }
  });

  test("a refused DELETE removes nothing: the device keeps its record and its agent data, and is still listed", async () => {
    const res = await f.app.inject({ method: "DELETE", url: "/api/devices/dev-2", headers: AUTH });
    assert.equal(res.statusCode, 503, res.body);
    const { message } = (res.json() as { error: { message: string } }).error;
    assert.match(message, /nothing of dev-2 was removed/);
    assert.match(message, /send the DELETE again/);
    assert.ok(f.registry.get("dev-2"), "the registry record is still there: the device can still log in");
    assert.ok(fs.existsSync(path.join(f.runtimeDir, "agents", "dev-2.db")), "the agent's database is still there");
    const list = await f.app.inject({ method: "GET", url: "/api/devices", headers: AUTH });
    assert.equal(list.statusCode, 200, list.body);
    const ids = (list.json() as { devices: Array<{ id: string }> }).devices.map((d) => d.id);
    assert.ok(ids.includes("dev-2"), `still listed: ${ids.join(", ")}`);
  });

  test("routes the registry serves alone still answer", async () => {
    const res = await f.app.inject({ method: "GET", url: "/api/devices", headers: AUTH });
    assert.equal(res.statusCode, 200, res.body);
  });
});
