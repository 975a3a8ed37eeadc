import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, describe, test } from "node:test";
import Database from "better-sqlite3";
import {
  type BridgeProcess,
  makeTempDir,
  metricSum,
  runCli,
  runCliAsync,
  scrapeMetrics,
  startBridgeProcess,
  TEST_API_TOKEN,
} from "./support/bridge-process.ts";
import { connectDevice, type TestDevice } from "./support/device.ts";

const root = makeTempDir("bridge-backup-");
const dataDir = path.join(root, "data");
const running: BridgeProcess[] = [];
const devices: TestDevice[] = [];

after(async () => {
  for (const d of devices) await d.end().catch(() => {});
  for (const b of running) await b.stop().catch(() => {});
  fs.rmSync(root, { recursive: true, force: true });
});

async function start(dir: string): Promise<BridgeProcess> {
  const b = await startBridgeProcess({ dataDir: dir, args: ["--idle-timeout-ms", "300"] });
  running.push(b);
  return b;
}

async function stop(b: BridgeProcess): Promise<void> {
  await b.stop();
  running.splice(running.indexOf(b), 1);
}

async function device(b: BridgeProcess, id: string, secret: string): Promise<TestDevice> {
  const d = await connectDevice({ port: b.mqttPort, id, secret, codec: "cbor" });
  devices.push(d);
  return d;
}

async function readings(b: BridgeProcess, id: string): Promise<number> {
  const res = await b.api("GET", `/api/devices/${id}/telemetry?limit=5000`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return (res.body as { readings: unknown[] }).readings.length;
}

/** Every file under `dir`, relative. */
function files(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile());
}

function integrityOfEveryDatabase(dir: string): void {
  for (const f of files(dir).filter((name) => name.endsWith(".db"))) {
    const db = new Database(path.join(dir, f), { readonly: true });
    try {
      assert.equal(db.pragma("integrity_check", { simple: true }), "ok", f);
    } finally {
      db.close();
    }
  }
}

describe("backup and restore end to end", () => {
  let snapshot = "";
  const secrets = new Map<string, string>();
  const expected = { busyMin: 0, busyMax: 0, sleepy: 0 };

  test("a backup of a running bridge while a device keeps sending, with a hibernated agent in it", async () => {
    const added = runCli(["devices", "add", "--count", "2", "--prefix", "dev-", "--json", "--data-dir", dataDir]);
    assert.equal(added.status, 0, added.stderr);
    for (const line of added.stdout.trim().split("\n")) {
      const { id, secret } = JSON.parse(line) as { id: string; secret: string };
      secrets.set(id, secret);
    }
    const b = await start(dataDir);
    const sleepy = await device(b, "dev-1", secrets.get("dev-1")!);
    for (let i = 0; i < 3; i++) await sleepy.send("telemetry", { r: { t: 20 + i } });
    const put = await b.api("PUT", "/api/devices/dev-1/shadow/desired", { state: { target: 21 } });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const cmd = await b.api("POST", "/api/devices/dev-2/commands", { name: "reboot" });
    assert.equal(cmd.status, 201, JSON.stringify(cmd.body));
    expected.sleepy = 3;
    const busy = await device(b, "dev-2", secrets.get("dev-2")!);
    await busy.send("telemetry", { r: { n: 0 } });
    // dev-1's agent leaves memory; dev-2's stays busy below.
    for (let i = 0; i < 100 && metricSum(await scrapeMetrics(b), "bridge_agents_hibernated") < 1; i++) await sleep(100);
    assert.ok(metricSum(await scrapeMetrics(b), "bridge_agents_hibernated") >= 1, "an agent is hibernated");

    let sent = 1;
    let sending = true;
    const traffic = (async () => {
      while (sending) {
        await busy.send("telemetry", { r: { n: sent } });
        sent++;
        // Paced, so the readings stay within one page of the telemetry API.
        await sleep(5);
      }
    })();
    await sleep(100);
    const before = sent;
    const res = await b.api("POST", "/api/backup", {});
    const afterBackup = sent;
    await sleep(100);
    sending = false;
    await traffic;
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const body = res.body as { dir: string; agents: number; bytes: number; durationMs: number };
    assert.equal(body.agents, 2);
    assert.ok(sent > afterBackup, "the device's messages were acknowledged after the backup too");
    expected.busyMin = before;
    expected.busyMax = afterBackup;
    snapshot = body.dir;
    assert.equal(path.dirname(snapshot), path.join(dataDir, "backups"));
    assert.ok((await readings(b, "dev-2")) >= sent - 1, "every acknowledged reading is in the live bridge");
    const metrics = await scrapeMetrics(b);
    assert.equal(metricSum(metrics, "bridge_backups_total"), 1);
    assert.ok(metricSum(metrics, "bridge_backup_last_success_timestamp_seconds") > 0);
    assert.deepEqual(busy.violations, []);
    await stop(b);

    assert.deepEqual(files(snapshot).sort(), [
      "agents/agents/dev-1.db",
      "agents/agents/dev-2.db",
      "agents/runtime.db",
      "backup.json",
      "registry.db",
    ]);
    assert.equal(fs.statSync(snapshot).mode & 0o777, 0o700);
    for (const f of files(snapshot)) assert.equal(fs.statSync(path.join(snapshot, f)).mode & 0o777, 0o600, f);
    assert.deepEqual(fs.readdirSync(path.join(dataDir, "backups")), [path.basename(snapshot)], "no temporary folder");
    integrityOfEveryDatabase(snapshot);
  });

  test("a bridge started on the snapshot has the devices and their data as they were", async () => {
    assert.ok(snapshot !== "", "the backup test ran");
    const b = await start(snapshot);
    const n = await readings(b, "dev-2");
    assert.ok(
      n >= expected.busyMin && n <= expected.busyMax,
      `${n} readings, from ${expected.busyMin} to ${expected.busyMax}`,
    );
    assert.equal(await readings(b, "dev-1"), expected.sleepy);
    const shadow = await b.api("GET", "/api/devices/dev-1/shadow");
    assert.deepEqual((shadow.body as { desired: { state: unknown } }).desired.state, { target: 21 });
    const commands = await b.api("GET", "/api/devices/dev-2/commands");
    assert.deepEqual(
      (commands.body as { commands: Array<{ name: string }> }).commands.map((c) => c.name),
      ["reboot"],
    );
    const conversation = await b.api("GET", "/api/devices/dev-1/conversation");
    assert.equal(conversation.status, 200);
    // The devices connect with the secrets they were given before the backup.
    const d = await device(b, "dev-1", secrets.get("dev-1")!);
    await d.send("rpc", { id: "p", m: "ping", a: [] });
    assert.equal((await d.waitFor("rpc", (f) => f.id === "p")).ok, true);
    await d.end();
    await stop(b);
  });

  test("the CLI backs up a running bridge through its API, and a stopped one by itself", async () => {
    const b = await start(dataDir);
    const env = { BRIDGE_API_TOKEN: TEST_API_TOKEN };
    const url = `http://127.0.0.1:${b.httpPort}`;
    const online = await runCliAsync(["backup", "--data-dir", dataDir, "--url", url, "--json"], env);
    assert.equal(online.status, 0, online.stderr);
    const onlineDir = (JSON.parse(online.stdout) as { dir: string }).dir;
    assert.equal(path.dirname(onlineDir), path.join(dataDir, "backups"));
    const elsewhere = path.join(root, "elsewhere");
    const refused = await runCliAsync(["backup", "--data-dir", dataDir, "--url", url, "--out", elsewhere], env);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /--out must name a new folder under its backup\.dir/);
    assert.equal(fs.existsSync(elsewhere), false);
    await stop(b);

    const offline = runCli(["backup", "--data-dir", dataDir, "--out", elsewhere, "--json"]);
    assert.equal(offline.status, 0, offline.stderr);
    assert.equal((JSON.parse(offline.stdout) as { agents: number }).agents, 2);
    // Its progress goes to stderr as the bridge's own log lines are written (ISO time, the service's name).
    const logLines = offline.stderr
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as { time: unknown; service: unknown; msg: unknown });
    assert.ok(
      logLines.some((line) => line.msg === "backup finished"),
      offline.stderr,
    );
    for (const line of logLines) {
      assert.equal(line.service, "agent-bridge", offline.stderr);
      assert.match(String(line.time), /^\d{4}-\d{2}-\d{2}T/, offline.stderr);
    }
    integrityOfEveryDatabase(elsewhere);
    const again = runCli(["backup", "--data-dir", dataDir, "--out", elsewhere]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /exists already/);
    const inside = runCli(["backup", "--data-dir", dataDir, "--out", path.join(elsewhere, "nested")]);
    assert.equal(inside.status, 1);
    assert.match(inside.stderr, /inside the snapshot/);
  });
});
