import assert from "node:assert/strict";
import fs from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { addDevice, type BridgeProcess, makeTempDir, startBridgeProcess } from "./support/bridge-process.ts";
import { connectDevice, type TestDevice } from "./support/device.ts";

const dataDir = makeTempDir("bridge-shadow-");
let bridge: BridgeProcess;
const secrets = new Map<string, string>();
const open: TestDevice[] = [];

async function device(id: string): Promise<TestDevice> {
  const d = await connectDevice({ port: bridge.mqttPort, id, secret: secrets.get(id), codec: "cbor" });
  open.push(d);
  return d;
}

before(async () => {
  for (const id of ["shadow-1", "cmd-1"]) secrets.set(id, addDevice(dataDir, id, "cbor"));
  bridge = await startBridgeProcess({ dataDir });
});

after(async () => {
  for (const d of open) await d.end();
  if (bridge) await bridge.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

interface CommandView {
  id: string;
  name: string;
  state: string;
  attempts: number;
}

describe("shadow and commands end to end", () => {
  test("desired changes reach the device as versioned deltas and stale versions are refused on both sides", async () => {
    const d = await device("shadow-1");
    await d.send("hello", { fw: "2.0.0", codec: "cbor" });
    const set = await bridge.api("PUT", "/api/devices/shadow-1/shadow/desired", { state: { target: 21 } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    const version = (set.body as { version: number }).version;
    const delta = await d.waitFor("state", (f) => f.v === version && f.d.target === 21);
    assert.equal(delta.d.target, 21);

    const stale = await bridge.api("PUT", "/api/devices/shadow-1/shadow/desired", {
      state: { target: 5 },
      expectedVersion: version - 1,
    });
    assert.equal(stale.status, 409, "an operator with a stale version is refused");

    await d.send("state", { v: 0, s: { target: 21 } });
    const shadow = await bridge.api("GET", "/api/devices/shadow-1/shadow");
    const doc = shadow.body as { reported: { version: number; state: { target: number } }; delta: object };
    assert.equal(doc.reported.version, 1);
    assert.equal(doc.reported.state.target, 21);
    assert.deepEqual(doc.delta, {}, "reported matches desired: no delta left");

    await d.send("state", { v: 0, s: { target: 22 } });
    const error = await d.waitFor("error", (f) => f.code === "BRIDGE_ERR_STALE_VERSION");
    assert.equal(error.v, 1, "the error carries the current reported version");
    assert.deepEqual(d.violations, []);
  });

  test("a command whose TTL passed while the device was offline is never delivered; a live one is redelivered until acked", async () => {
    const first = await device("cmd-1");
    await first.send("hello", { fw: "1.0.0", codec: "cbor" });
    await first.end();

    const expiring = await bridge.api("POST", "/api/devices/cmd-1/commands", { name: "reboot", ttlSeconds: 1 });
    assert.equal(expiring.status, 201, JSON.stringify(expiring.body));
    const live = await bridge.api("POST", "/api/devices/cmd-1/commands", { name: "set-rate", args: { hz: 2 } });
    assert.equal(live.status, 201, JSON.stringify(live.body));
    const expiringId = (expiring.body as CommandView).id;
    const liveId = (live.body as CommandView).id;
    await sleep(1500);

    // Back online without acking: the live command arrives, the expired one does not.
    const second = await device("cmd-1");
    await second.send("hello", { fw: "1.0.0", codec: "cbor" });
    const delivered = await second.waitFor("cmd", (f) => f.id === liveId);
    assert.equal(delivered.n, "set-rate");
    await second.end();
    assert.ok(!second.received.some((r) => r.channel === "cmd" && (r.frame as { id: string }).id === expiringId));
    const expired = await bridge.api("GET", `/api/devices/cmd-1/commands/${expiringId}`);
    assert.equal((expired.body as CommandView).state, "EXPIRED");

    // Reconnect: redelivered because it was never acked; this time the device acks it.
    const third = await device("cmd-1");
    await third.send("hello", { fw: "1.0.0", codec: "cbor" });
    await third.waitFor("cmd", (f) => f.id === liveId);
    await third.send("ack", { id: liveId, ok: true, res: "done" });
    let state = "";
    for (let i = 0; i < 50 && state !== "SUCCEEDED"; i += 1) {
      const view = await bridge.api("GET", `/api/devices/cmd-1/commands/${liveId}`);
      state = (view.body as CommandView).state;
      if (state !== "SUCCEEDED") await sleep(100);
    }
    assert.equal(state, "SUCCEEDED");
    const final = await bridge.api("GET", `/api/devices/cmd-1/commands/${liveId}`);
    assert.ok((final.body as CommandView).attempts >= 2, "delivered at least twice");
    assert.deepEqual(third.violations, []);
  });
});
