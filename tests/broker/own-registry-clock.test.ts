/**
 * A broker that opens its own registry (`dataDir`, no `registry`) gives it the broker's clock: the registry's
 * created_at and last-seen marks are the broker's time, like everything else the broker times.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { createBroker } from "../../broker/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { RecordingHost } from "./helpers.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "broker-own-registry-clock-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("the registry a broker opens itself", () => {
  test("reads the broker's clock for a device's created_at and last seen", async () => {
    const clock = new ManualClock(Date.UTC(2030, 5, 1));
    const broker = createBroker({ host: new RecordingHost(), dataDir: dir, tcp: false, websocket: false, clock });
    try {
      const added = await broker.registry.add("clocked-1");
      assert.equal(added.status, "created");
      assert.equal(added.status === "created" ? added.device.createdAt : undefined, Date.UTC(2030, 5, 1));
      await clock.advance(60_000);
      broker.registry.touch("clocked-1");
      broker.registry.flush();
      assert.equal(broker.registry.get("clocked-1")?.lastSeen, Date.UTC(2030, 5, 1) + 60_000);
    } finally {
      await broker.close();
    }
  });
});
