import assert from "node:assert/strict";
import fs from "node:fs";
import { after, describe, test } from "node:test";
import { createFleet, seededRandom } from "../../firmware-sim/index.ts";
import { makeTempDir } from "./support/bridge-process.ts";
import { createLoopbackBridge, provisionDevices } from "../support/in-process-bridge.ts";

const dataDir = makeTempDir("bridge-takeover-codec-");
after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

describe("the codec of a device session", () => {
  test("pb devices provisioned as cbor, kicking each other off with one client id over a lossy network, receive every command in pb", async () => {
    const bridge = await createLoopbackBridge({ dataDir, apiToken: "takeover-codec-token-0123456789" });
    try {
      const credentials = await provisionDevices(bridge, ["pbtwin-1", "pbtwin-2", "pbtwin-3"], "cbor");
      const addresses = await bridge.start();
      const fleet = createFleet({
        url: `mqtt://127.0.0.1:${addresses.mqtt?.port}`,
        credentials,
        codec: "pb",
        takeoverPairs: 2,
        takeoverDelayMs: 50,
        networkDropMeanMs: 800,
        rate: 5,
        settleMs: 200,
        random: seededRandom(7),
        backoff: { baseDelayMs: 20, maxDelayMs: 60 },
      });
      const greeted = new Set<string>();
      fleet.events.on("online", (id) => greeted.add(id));
      void fleet.start();
      // Before a device's first hello ever, its registry record (cbor) is all the bridge knows: commands start once
      // every device said hello once. From then on they flow all the time, so many reach sessions that have
      // connected (a twin taking over, a reconnect after a drop) but not said hello yet.
      const started = Date.now();
      while (greeted.size < credentials.length) {
        assert.ok(Date.now() - started < 20_000, "devices came online");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const deadline = Date.now() + 5000;
      let sent = 0;
      while (Date.now() < deadline) {
        for (const { id } of credentials) {
          const call = await bridge.runtime.call(id, "sendCommand", [{ name: "blink", ttlSeconds: 30 }]);
          assert.equal(call.ok, true);
          sent++;
        }
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      await fleet.stop();
      const report = await fleet.stop();
      assert.ok(sent > 0);
      assert.ok(report.stats.counters.commandsReceived > 0, "devices received commands");
      assert.equal(
        report.violationCounts["undecodable-down-frame"] ?? 0,
        0,
        JSON.stringify(report.violationDetails.slice(0, 3)),
      );
    } finally {
      await bridge.stop();
    }
  });
});
