import assert from "node:assert/strict";
import fs from "node:fs";
import { after, describe, test } from "node:test";
import { pino } from "pino";
import { createBridge } from "../../app/bridge.ts";
import { hasErrorCode } from "../../errors/index.ts";
import { makeTempDir } from "./support/bridge-process.ts";
import { loopbackConfig } from "../support/in-process-bridge.ts";

const dataDir = makeTempDir("bridge-inproc-");
after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

const config = () => loopbackConfig({ dataDir, apiToken: "in-process-token-0123456789" });

describe("createBridge in process", () => {
  test("start resolves with real addresses, operators reach agents through the runtime, and stop is idempotent", async () => {
    const bridge = await createBridge(config(), { logger: pino({ level: "silent" }) });
    try {
      const addresses = await bridge.start();
      assert.ok((addresses.mqtt?.port ?? 0) > 0);
      assert.ok((addresses.http?.port ?? 0) > 0);
      assert.deepEqual(bridge.addresses(), addresses);
      assert.equal(bridge.engine, undefined, "no engine client without engine URLs");
      const ping = await bridge.runtime.call("op-1", "ping", []);
      assert.equal(ping.ok, true);
      const set = await bridge.runtime.call("op-1", "setDesired", [{ mode: "eco" }]);
      assert.deepEqual(set, { ok: true, value: { status: "ok", version: 1 } });
    } finally {
      await bridge.stop();
      await bridge.stop();
    }
    await assert.rejects(bridge.start(), (err) => hasErrorCode(err, "BRIDGE_ERR_STOPPED"));
  });

  test("agent state survives a stop and a new bridge on the same data directory", async () => {
    const bridge = await createBridge(config(), { logger: pino({ level: "silent" }) });
    await bridge.start();
    const shadow = await bridge.runtime.call("op-1", "getShadow", []);
    await bridge.stop();
    assert.equal(shadow.ok, true);
    assert.deepEqual((shadow as unknown as { value: { desired: { version: number; state: unknown } } }).value.desired, {
      version: 1,
      state: { mode: "eco" },
    });
  });
});
