/**
 * A bridge with a configured engine shows each replica in `bridge_engine_replica_healthy` from the start, before
 * any request or state change (the client reports its replicas' initial states when it is created).
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import type { Bridge } from "../../app/bridge.ts";
import { type EngineSimulator, startEngineSimulator } from "../../engine-client/sim/index.ts";
import { createLoopbackBridge } from "../support/in-process-bridge.ts";

const TOKEN = "bridge-engine-metrics-token-0123456789";
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "bridge-engine-metrics-"));
let sim: EngineSimulator;
let bridge: Bridge;
let http = "";

before(async () => {
  sim = await startEngineSimulator({ timeScale: 0 });
  bridge = await createLoopbackBridge({ dataDir, apiToken: TOKEN, engineUrls: [sim.url] });
  const addresses = await bridge.start();
  http = `127.0.0.1:${addresses.http?.port}`;
});

after(async () => {
  await bridge?.stop();
  await sim?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test("bridge_engine_replica_healthy has a sample of 1 per replica as soon as the bridge is up", async () => {
  const res = await fetch(`http://${http}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 200);
  const text = await res.text();
  const lines = text.split("\n").filter((l) => l.startsWith("bridge_engine_replica_healthy{"));
  assert.deepEqual(lines, [`bridge_engine_replica_healthy{replica="${sim.url}"} 1`]);
});
