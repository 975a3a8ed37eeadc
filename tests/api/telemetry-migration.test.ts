/** GET /api/devices/:id/telemetry on a device whose database the code before issue #6 wrote (device schema 3). */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { createSchemaV3Database } from "../agents/fixtures/device-schema-v3.ts";
import { AUTH, type ApiFixture, createApiFixture } from "./helpers.ts";

describe("telemetry route after migration 4", () => {
  let f: ApiFixture;
  before(async () => {
    f = await createApiFixture();
  });
  after(async () => {
    await f.close();
  });

  test("readings stored by schema 3 are returned by range and metric, then new readings follow them", async () => {
    const t0 = f.clock.now();
    fs.mkdirSync(path.join(f.runtimeDir, "agents"), { recursive: true });
    createSchemaV3Database(path.join(f.runtimeDir, "agents", "old-api-1.db"), [
      { id: 1, ts: t0 - 3000, metric: "temp", kind: "n", value: 20.5, unit: "Cel" },
      { id: 2, ts: t0 - 3000, metric: "hum", kind: "n", value: 41 },
      { id: 5, ts: t0 - 2000, metric: "temp", kind: "n", value: 21 },
      { id: 6, ts: t0 - 2000, metric: "ok", kind: "b", value: 0 },
    ]);
    await f.provision("old-api-1");
    const get = async (url: string) => {
      const res = await f.app.inject({ method: "GET", url, headers: AUTH });
      assert.equal(res.statusCode, 200, res.body);
      return (res.json() as { readings: unknown[] }).readings;
    };
    assert.deepEqual(await get("/api/devices/old-api-1/telemetry"), [
      { ts: t0 - 3000, metric: "temp", value: 20.5, unit: "Cel" },
      { ts: t0 - 3000, metric: "hum", value: 41 },
      { ts: t0 - 2000, metric: "temp", value: 21 },
      { ts: t0 - 2000, metric: "ok", value: false },
    ]);
    const dev = await f.device("old-api-1");
    assert.equal((await dev.send({ channel: "telemetry", frame: { r: { temp: 22 } } })).status, "committed");
    assert.deepEqual(await get(`/api/devices/old-api-1/telemetry?metric=temp&from=${t0 - 2500}`), [
      { ts: t0 - 2000, metric: "temp", value: 21 },
      { ts: t0, metric: "temp", value: 22 },
    ]);
    await dev.close();
  });
});
