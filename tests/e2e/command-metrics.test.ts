import assert from "node:assert/strict";
import fs from "node:fs";
import { after, describe, test } from "node:test";
import { makeTempDir } from "./support/bridge-process.ts";
import { connectDevice } from "./support/device.ts";
import { createLoopbackBridge } from "../support/in-process-bridge.ts";

const dataDir = makeTempDir("bridge-command-metrics-");
after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

/** The value of `bridge_command_states_total{state="..."}` in a scrape (0 when absent). */
function commandStates(text: string, state: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`bridge_command_states_total{state="${state}"}`));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

describe("command metrics", () => {
  test("bridge_command_states_total moves when a command is queued, sent and acked by the device", async () => {
    const bridge = await createLoopbackBridge({ dataDir, apiToken: "command-metrics-token-0123456789" });
    try {
      const added = await bridge.registry.add("valve-1", { codec: "cbor" });
      assert.equal(added.status, "created");
      const addresses = await bridge.start();
      const before = await bridge.metrics.scrape();
      assert.equal(commandStates(before, "SUCCEEDED"), 0);
      const device = await connectDevice({
        port: addresses.mqtt?.port ?? 0,
        id: "valve-1",
        secret: added.status === "created" ? added.secret : "",
        codec: "cbor",
      });
      try {
        await device.send("hello", { fw: "1.0.0", codec: "cbor" });
        const sent = await bridge.runtime.call("valve-1", "sendCommand", [{ name: "open" }]);
        assert.equal(sent.ok, true);
        const cmd = await device.waitFor("cmd", (f) => f.n === "open");
        await device.send("ack", { id: cmd.id, ok: true });
        const text = await bridge.metrics.scrape();
        assert.equal(commandStates(text, "QUEUED"), 1);
        assert.equal(commandStates(text, "SENT"), 1);
        assert.equal(commandStates(text, "SUCCEEDED"), 1);
        assert.equal(commandStates(text, "FAILED"), 0);
        assert.deepEqual(device.violations, []);
      } finally {
        await device.end();
      }
    } finally {
      await bridge.stop();
    }
  });
});
