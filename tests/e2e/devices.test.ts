import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, describe, test } from "node:test";
import { type CodecName, getCodec } from "../../codecs/index.ts";
import {
  addDevice,
  type BridgeProcess,
  makeTempDir,
  metricSum,
  runCli,
  scrapeMetrics,
  startBridgeProcess,
} from "./support/bridge-process.ts";
import { connectDevice, type TestDevice } from "./support/device.ts";

const dataDir = makeTempDir("bridge-devices-");
let bridge: BridgeProcess;
const secrets = new Map<string, string>();
const open: TestDevice[] = [];

async function device(id: string, codec: CodecName, strict = true): Promise<TestDevice> {
  const d = await connectDevice({ port: bridge.mqttPort, id, secret: secrets.get(id), codec, strict });
  open.push(d);
  return d;
}

before(async () => {
  for (const [id, codec] of [
    ["json-1", "json"],
    ["json-identity", "json"],
    ["cbor-1", "cbor"],
    ["pb-1", "pb"],
    ["strict-cbor", "cbor"],
    ["strict-pb", "pb"],
    ["victim-1", "cbor"],
    ["abuser-1", "cbor"],
    ["other-1", "cbor"],
    ["flood-1", "cbor"],
  ] as const) {
    secrets.set(id, addDevice(dataDir, id, codec));
  }
  bridge = await startBridgeProcess({ dataDir });
});

after(async () => {
  for (const d of open) await d.end();
  if (bridge) await bridge.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe("devices end to end", () => {
  for (const codec of ["json", "cbor", "pb"] as const) {
    test(`a ${codec} device says hello, sends telemetry and gets its rpc result in ${codec}`, async () => {
      const d = await device(`${codec}-1`, codec);
      await d.send("hello", { fw: "1.0.0", codec });
      await d.send("telemetry", { r: { temp: 21.5, on: true } });
      await d.send("rpc", { id: `r-${codec}`, m: "ping", a: [] });
      const result = await d.waitFor("rpc", (f) => f.id === `r-${codec}`);
      assert.equal(result.ok, true);
      assert.deepEqual(d.violations, []);
      const rows = await bridge.api("GET", `/api/devices/${codec}-1/telemetry`);
      assert.equal(rows.status, 200, JSON.stringify(rows.body));
      assert.match(JSON.stringify(rows.body), /temp/);
    });
  }

  test("a JSON device gets the identity protocol frame once it has subscribed", async () => {
    const json = await device("json-identity", "json");
    await json.send("hello", { fw: "1.0.0", codec: "json" });
    const identity = await json.waitFor("identity");
    assert.equal(identity.id, "json-identity");
    assert.equal(identity.name, "DeviceAgent");
  });

  for (const codec of ["cbor", "pb"] as const) {
    test(`a strict ${codec}-only device never receives a JSON text frame, even for errors and rpc failures`, async () => {
      const d = await device(`strict-${codec}`, codec, true);
      await d.send("hello", { fw: "strict-1", codec });
      await d.send("rpc", { id: "bad-method", m: "noSuchMethod", a: [] });
      await d.send("rpc", { id: "good", m: "ping", a: [] });
      // A malformed frame asks for an error frame, which must come in the device's own codec.
      await d.publishRaw(`devices/strict-${codec}/up/telemetry`, Buffer.from([0xff, 0x00, 0x13]));
      const failed = await d.waitFor("rpc", (f) => f.id === "bad-method");
      assert.equal(failed.ok, false);
      await d.waitFor("rpc", (f) => f.id === "good");
      await d.waitFor("error");
      await d.send("state", { v: 0, s: { mode: "eco" } });
      const shadow = await bridge.api("GET", `/api/devices/strict-${codec}/shadow`);
      assert.equal(shadow.status, 200);
      assert.deepEqual(d.violations, []);
      assert.ok(
        d.received.every((r) => r.channel !== "identity"),
        "no protocol frames to a binary device",
      );
    });
  }

  test("a device provisioned while the bridge runs connects at once, and a removed one is refused", async () => {
    const secret = addDevice(dataDir, "late-1", "cbor");
    const late = await connectDevice({ port: bridge.mqttPort, id: "late-1", secret, codec: "cbor" });
    await late.send("rpc", { id: "hi", m: "ping", a: [] });
    assert.equal((await late.waitFor("rpc", (f) => f.id === "hi")).ok, true);
    await late.end();
    const removed = runCli(["devices", "rm", "late-1", "--data-dir", dataDir]);
    assert.equal(removed.status, 0, removed.stderr);
    await assert.rejects(connectDevice({ port: bridge.mqttPort, id: "late-1", secret, codec: "cbor" }));
  });

  test("a wrong password is refused at CONNECT", async () => {
    await assert.rejects(
      connectDevice({ port: bridge.mqttPort, id: "cbor-1", secret: "wrong-secret-wrong-secret", codec: "cbor" }),
      /Bad username or password|Not authorized/i,
    );
    await assert.rejects(
      connectDevice({ port: bridge.mqttPort, id: "never-added", secret: "whatever-secret", codec: "cbor" }),
      /Not authorized|Bad username or password/i,
    );
    const metrics = await scrapeMetrics(bridge);
    assert.ok(metricSum(metrics, "bridge_auth_failures_total") >= 2, "refused CONNECTs are counted");
  });

  test("a device can neither publish nor subscribe outside its own namespace", async () => {
    const victim = await device("victim-1", "cbor");
    const abuser = await device("abuser-1", "cbor");
    const refusal = await abuser.client.subscribeAsync("devices/victim-1/down/#", { qos: 1 }).then(
      () => undefined,
      (err: { packet?: { granted?: number[] } }) => err,
    );
    assert.deepEqual(refusal?.packet?.granted, [128], "a foreign subscription is refused (SUBACK 0x80)");
    let foreignMessages = 0;
    abuser.client.on("message", (topic) => {
      if (topic.startsWith("devices/victim-1/")) foreignMessages += 1;
    });
    // Publishing to another device's topics: the broker refuses; aedes may close the session for it.
    // QoS 0: a refused QoS 1 publish may close the session, and its PUBACK would never come.
    await abuser
      .publishRaw("devices/victim-1/up/rpc", Buffer.from(getCodec("cbor").encodeUp("rpc", { id: "x", m: "ping" })), 0)
      .catch(() => undefined);
    await victim.send("rpc", { id: "victim-ping", m: "ping", a: [] });
    await victim.waitFor("rpc", (f) => f.id === "victim-ping");
    assert.equal(foreignMessages, 0);
    const stolen = victim.received.filter((r) => r.channel === "rpc" && (r.frame as { id: string }).id === "x");
    assert.equal(stolen.length, 0, "the victim's agent never ran the abuser's call");
    const metrics = await scrapeMetrics(bridge);
    assert.ok(metricSum(metrics, "bridge_acl_denied_total") >= 2, "refused publish and subscribe are counted");
  });

  test("malformed frames of every kind leave the bridge and other devices working", async () => {
    const abuser = await device("abuser-1", "cbor", false);
    const other = await device("other-1", "cbor");
    const cbor = getCodec("cbor");
    const deep = Buffer.from(JSON.stringify(JSON.parse(`${"[".repeat(200)}${"]".repeat(200)}`)));
    const bad: Array<[string, Buffer]> = [
      ["devices/abuser-1/up/telemetry", Buffer.from([0xff, 0xfe, 0xfd])], // not CBOR
      ["devices/abuser-1/up/telemetry", Buffer.alloc(0)], // empty
      ["devices/abuser-1/up/telemetry/json", Buffer.from("{not json")], // broken JSON
      ["devices/abuser-1/up/telemetry/json", deep], // too deep
      ["devices/abuser-1/up/telemetry/pb", Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])], // truncated pb
      ["devices/abuser-1/up/rpc", Buffer.from(cbor.encodeUp("telemetry", { r: { x: 1 } }))], // wrong shape
      ["devices/abuser-1/up/nochannel", Buffer.from(cbor.encodeUp("telemetry", { r: { x: 1 } }))], // unknown channel
      ["devices/abuser-1/up/telemetry/xml", Buffer.from("<x/>")], // unknown codec suffix
      ["devices/abuser-1/up/hello", Buffer.from(cbor.encodeUp("hello", { fw: "x".repeat(10) }).subarray(0, 3))],
      ["devices/abuser-1/up/telemetry", Buffer.alloc(70 * 1024, 0xa1)], // larger than the frame limit
    ];
    for (const [topic, payload] of bad) await abuser.publishRaw(topic, payload).catch(() => undefined);
    await other.send("telemetry", { r: { ok: 1 } });
    await other.send("rpc", { id: "still-alive", m: "ping", a: [] });
    await other.waitFor("rpc", (f) => f.id === "still-alive");
    assert.deepEqual(other.violations, []);
    const health = await fetch(`http://127.0.0.1:${bridge.httpPort}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(bridge.child.exitCode, null, "the bridge is still running");
    const metrics = await scrapeMetrics(bridge);
    assert.ok(metricSum(metrics, "bridge_decode_errors_total") >= 3, "decode failures are counted");
  });

  test("a flooding device is rate limited and cut off while another device keeps working", async () => {
    const flood = await device("flood-1", "cbor", false);
    const other = await device("other-1", "cbor");
    const closed = new Promise<void>((resolve) => flood.client.once("close", () => resolve()));
    const payload = Buffer.from(getCodec("cbor").encodeUp("telemetry", { r: { x: 1 } }));
    // QoS 0 so the flood is not paced by PUBACKs; far beyond the default 100 msg/s with a burst of 200.
    for (let i = 0; i < 3000 && flood.client.connected; i += 1)
      flood.client.publish("devices/flood-1/up/telemetry", payload, { qos: 0 });
    await closed;
    await other.send("rpc", { id: "after-flood", m: "ping", a: [] });
    await other.waitFor("rpc", (f) => f.id === "after-flood");
    const metrics = await scrapeMetrics(bridge);
    assert.ok(metricSum(metrics, "bridge_limit_breaches_total") >= 1, "the breach is counted");
  });
});
