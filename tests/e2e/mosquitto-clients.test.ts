import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { after, describe, test } from "node:test";
import { missingDebianPackage } from "../support/debian-package.ts";
import {
  addDevice,
  type BridgeProcess,
  gatherOutput,
  makeTempDir,
  startBridgeProcess,
} from "./support/bridge-process.ts";

const missing = missingDebianPackage("mosquitto-clients", "mosquitto_pub");
const dataDir = makeTempDir("bridge-mosquitto-");
let bridge: BridgeProcess | undefined;

after(async () => {
  await bridge?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

function credentials(port: number, id: string, secret: string): string[] {
  return ["-h", "127.0.0.1", "-p", String(port), "-i", id, "-u", id, "-P", secret, "-V", "mqttv311"];
}

describe("mosquitto command-line clients as a third-party device", { skip: missing }, () => {
  test("mosquitto_pub with credentials stores telemetry; mosquitto_sub receives a command as JSON", async () => {
    const secret = addDevice(dataDir, "mosq-1", "json");
    bridge = await startBridgeProcess({ dataDir });
    const b = bridge;

    const pub = spawnSync(
      "mosquitto_pub",
      [
        ...credentials(b.mqttPort, "mosq-1", secret),
        "-q",
        "1",
        "-t",
        "devices/mosq-1/up/telemetry/json",
        "-m",
        '{"r":{"hum":40}}',
      ],
      { encoding: "utf8", timeout: 20_000 },
    );
    assert.equal(pub.status, 0, pub.stderr);
    const rows = await b.api("GET", "/api/devices/mosq-1/telemetry");
    const readings = (rows.body as { readings: Array<{ metric: string; value: number }> }).readings;
    assert.deepEqual(
      readings.map((r) => [r.metric, r.value]),
      [["hum", 40]],
      "a QoS 1 publish acknowledged to mosquitto_pub is stored",
    );

    const sub = spawn(
      "mosquitto_sub",
      [...credentials(b.mqttPort, "mosq-1", secret), "-q", "1", "-t", "devices/mosq-1/down/cmd", "-C", "1", "-W", "20"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const output = gatherOutput(sub);
    try {
      // Wait until the subscription is in place: the device shows online.
      for (let i = 0; i < 100; i += 1) {
        const list = await b.api("GET", "/api/devices");
        const row = (list.body as { devices: Array<{ id: string; online: boolean }> }).devices.find(
          (d) => d.id === "mosq-1",
        );
        if (row?.online) break;
        await sleep(100);
      }
      await sleep(300);
      const posted = await b.api("POST", "/api/devices/mosq-1/commands", { name: "blink", args: { times: 3 } });
      assert.equal(posted.status, 201, JSON.stringify(posted.body));
      const code = await output.closed;
      assert.equal(code, 0, `mosquitto_sub: ${output.stderr()}`);
      const frame = JSON.parse(output.stdout().trim()) as { id: string; n: string; a: { times: number } };
      assert.equal(frame.n, "blink");
      assert.deepEqual(frame.a, { times: 3 });
    } finally {
      sub.kill();
    }
  });

  test("mosquitto_pub with a wrong password is refused", () => {
    assert.ok(bridge, "the first test started the bridge");
    const result = spawnSync(
      "mosquitto_pub",
      [
        ...credentials(bridge.mqttPort, "mosq-1", "not-the-secret"),
        "-t",
        "devices/mosq-1/up/telemetry/json",
        "-m",
        "{}",
      ],
      { encoding: "utf8", timeout: 20_000 },
    );
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /not authori[sz]ed|bad user name or password/i);
  });

  test("mosquitto_sub on another device's topics is denied", () => {
    assert.ok(bridge, "the first test started the bridge");
    const secret = addDevice(dataDir, "mosq-2", "json");
    const result = spawnSync(
      "mosquitto_sub",
      [...credentials(bridge.mqttPort, "mosq-2", secret), "-t", "devices/mosq-1/down/#", "-W", "5"],
      { encoding: "utf8", timeout: 20_000 },
    );
    // mosquitto_sub reports the SUBACK refusal (0x80) on stderr; exit codes differ between mosquitto versions.
    assert.match(result.stderr, /denied/i, `status ${result.status}, stderr: ${result.stderr}`);
  });
});
