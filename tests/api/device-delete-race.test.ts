import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type ApiFixture, AUTH, createApiFixture } from "./helpers.ts";

let f: ApiFixture;
before(async () => {
  f = await createApiFixture();
});
after(async () => {
  await f.close();
});

/** Lets the event loop turn `n` times: enough for an unblocked request to reach its handler's first await. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe("DELETE /api/devices/:id and a provisioning of the same id", () => {
  test("a POST /api/devices for an id whose removal is in progress waits for it, so the new device keeps its data", async () => {
    await f.provision("race-1");
    const old = await f.device("race-1");
    await old.send({ channel: "telemetry", frame: { r: { temp: 1 } } });
    await old.close();

    // The runtime's destroy waits (as for an agent whose event still runs) until the test lets it go on.
    const order: string[] = [];
    const runtime = f.runtime as { destroyAgent(id: string): Promise<boolean> };
    const registry = f.registry as { add: typeof f.registry.add };
    const realDestroy = runtime.destroyAgent.bind(f.runtime);
    const realAdd = registry.add.bind(f.registry);
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let destroying: () => void = () => {};
    const destroyStarted = new Promise<void>((resolve) => {
      destroying = resolve;
    });
    runtime.destroyAgent = async (id) => {
      destroying();
      await gate;
      const existed = await realDestroy(id);
      order.push("destroyed");
      return existed;
    };
    registry.add = (id, options) => {
      order.push("added");
      return realAdd(id, options);
    };
    try {
      const removal = f.app.inject({ method: "DELETE", url: "/api/devices/race-1", headers: AUTH });
      await destroyStarted;
      const provisioning = f.app.inject({
        method: "POST",
        url: "/api/devices",
        headers: AUTH,
        payload: { id: "race-1", codec: "json" },
      });
      await turns(50);
      release();
      const [removed, added] = await Promise.all([removal, provisioning]);
      assert.equal(removed.statusCode, 200, removed.body);
      assert.equal(added.statusCode, 201, added.body);
      assert.deepEqual(order, ["destroyed", "added"]);
    } finally {
      runtime.destroyAgent = realDestroy;
      registry.add = realAdd;
    }

    // The new device's first readings stay, and it starts with no last-seen of the deleted one.
    const fresh = await f.device("race-1");
    await fresh.send({ channel: "telemetry", frame: { r: { temp: 2 } } });
    await fresh.close();
    const rows = await f.app.inject({ method: "GET", url: "/api/devices/race-1/telemetry", headers: AUTH });
    assert.equal(rows.statusCode, 200, rows.body);
    const { readings } = rows.json() as { readings: Array<{ metric: string; value: number }> };
    assert.deepEqual(
      readings.map((r) => [r.metric, r.value]),
      [["temp", 2]],
    );
  });
});
