import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, describe, test } from "node:test";
import { addDevice, type BridgeProcess, makeTempDir, startBridgeProcess } from "./support/bridge-process.ts";
import { connectDevice, type TestDevice } from "./support/device.ts";

const dataDir = makeTempDir("bridge-crash-");
const running: BridgeProcess[] = [];
const devices: TestDevice[] = [];

after(async () => {
  for (const d of devices) await d.end();
  for (const b of running) await b.stop("SIGKILL");
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const LOAD_DEVICES = ["load-1", "load-2", "load-3", "load-4"];
const COMMAND_DEVICE = "cmd-offline";
/** Most messages one device sends, below the API's 5000-row page so one read shows them all. */
const MAX_PER_DEVICE = 3000;
const IN_FLIGHT_PER_DEVICE = 8;

/** Publishes `{seq}` telemetry with a few QoS 1 messages in flight; records a seq only once its PUBACK arrived. */
function loadDevice(device: TestDevice, acked: Set<number>, stopped: () => boolean): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (!stopped() && next < MAX_PER_DEVICE) {
      const seq = next++;
      try {
        await device.send("telemetry", { r: { seq } });
        if (!stopped()) acked.add(seq);
      } catch {
        return; // the connection died with the bridge
      }
    }
  };
  return Promise.all(Array.from({ length: IN_FLIGHT_PER_DEVICE }, worker)).then(() => undefined);
}

describe("durability end to end", () => {
  test("after SIGKILL under load, every PUBACKed telemetry message is stored and every queued command is delivered", async (t) => {
    // Generous limits: this test measures durability, not the broker's flood protection.
    const configFile = path.join(dataDir, "crash-config.json");
    fs.writeFileSync(
      configFile,
      JSON.stringify({ mqtt: { limits: { messagesPerSecond: 100000, burstMessages: 100000 } } }),
    );
    const secrets = new Map<string, string>();
    for (const id of [...LOAD_DEVICES, COMMAND_DEVICE]) secrets.set(id, addDevice(dataDir, id, "cbor"));
    const first = await startBridgeProcess({ dataDir, args: ["--config", configFile] });
    running.push(first);

    const acked = new Map<string, Set<number>>();
    let killed = false;
    const loads: Promise<void>[] = [];
    for (const id of LOAD_DEVICES) {
      const d = await connectDevice({ port: first.mqttPort, id, secret: secrets.get(id), codec: "cbor" });
      devices.push(d);
      await d.send("hello", { fw: "1.0.0", codec: "cbor" });
      const set = new Set<number>();
      acked.set(id, set);
      loads.push(loadDevice(d, set, () => killed));
    }
    // Commands queued for an offline device while the bridge is busy: a 201 means committed.
    const queued: string[] = [];
    const queueing = (async () => {
      for (let i = 0; i < 200 && !killed; i += 1) {
        const res = await first
          .api("POST", `/api/devices/${COMMAND_DEVICE}/commands`, { name: "step", args: { i } })
          .catch(() => undefined);
        if (res?.status === 201 && !killed) queued.push((res.body as { id: string }).id);
        await sleep(20);
      }
    })();

    const total = () => [...acked.values()].reduce((n, s) => n + s.size, 0);
    for (let i = 0; i < 200 && (total() < 400 || queued.length < 5); i += 1) await sleep(50);
    assert.ok(total() >= 400, `load was running (${total()} acked)`);
    killed = true;
    first.child.kill("SIGKILL");
    assert.equal(await first.exited, "SIGKILL");
    running.pop();
    for (const d of devices) await d.end();
    devices.length = 0;
    await Promise.race([Promise.all(loads), sleep(2000)]);
    await Promise.race([queueing, sleep(2000)]);

    const second = await startBridgeProcess({ dataDir, args: ["--config", configFile] });
    running.push(second);
    for (const id of LOAD_DEVICES) {
      const rows = await second.api("GET", `/api/devices/${id}/telemetry?metric=seq&limit=5000`);
      assert.equal(rows.status, 200, JSON.stringify(rows.body));
      const stored = new Set(
        (rows.body as { readings: Array<{ value: number }> }).readings.map((r) => Number(r.value)),
      );
      const lost = [...(acked.get(id) ?? [])].filter((seq) => !stored.has(seq));
      assert.deepEqual(lost, [], `${id}: acknowledged but not stored (${acked.get(id)?.size} acked)`);
    }

    const cmd = await connectDevice({
      port: second.mqttPort,
      id: COMMAND_DEVICE,
      secret: secrets.get(COMMAND_DEVICE),
      codec: "cbor",
    });
    devices.push(cmd);
    await cmd.send("hello", { fw: "1.0.0", codec: "cbor" });
    for (const id of queued) await cmd.waitFor("cmd", (f) => f.id === id, 20_000);
    assert.ok(queued.length >= 5, `commands were queued before the kill (${queued.length})`);
    t.diagnostic(`${total()} telemetry messages acknowledged before the kill, ${queued.length} commands queued`);
    assert.deepEqual(cmd.violations, []);
    assert.equal(await second.stop("SIGTERM"), 0, second.stderr());
    running.pop();
  });

  test("SIGTERM under load stops gracefully with exit 0 and keeps every acknowledged message", async () => {
    const dir = makeTempDir("bridge-sigterm-");
    try {
      const configFile = path.join(dir, "config.json");
      fs.writeFileSync(
        configFile,
        JSON.stringify({ mqtt: { limits: { messagesPerSecond: 100000, burstMessages: 100000 } } }),
      );
      const secret = addDevice(dir, "term-1", "cbor");
      const first = await startBridgeProcess({ dataDir: dir, args: ["--config", configFile] });
      running.push(first);
      const d = await connectDevice({ port: first.mqttPort, id: "term-1", secret, codec: "cbor" });
      devices.push(d);
      const acked = new Set<number>();
      let stopped = false;
      const load = loadDevice(d, acked, () => stopped);
      for (let i = 0; i < 200 && acked.size < 200; i += 1) await sleep(50);
      const code = await first.stop("SIGTERM");
      stopped = true;
      running.pop();
      assert.equal(code, 0, first.stderr());
      assert.ok(first.logs.some((l) => l.msg === "stopped"));
      await d.end();
      await Promise.race([load, sleep(2000)]);

      const second = await startBridgeProcess({ dataDir: dir, args: ["--config", configFile] });
      running.push(second);
      const rows = await second.api("GET", "/api/devices/term-1/telemetry?metric=seq&limit=5000");
      const stored = new Set(
        (rows.body as { readings: Array<{ value: number }> }).readings.map((r) => Number(r.value)),
      );
      assert.deepEqual(
        [...acked].filter((seq) => !stored.has(seq)),
        [],
        `acknowledged but not stored (${acked.size} acked)`,
      );
      assert.equal(await second.stop(), 0);
      running.pop();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
