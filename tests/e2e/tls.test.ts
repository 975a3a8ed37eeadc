import assert from "node:assert/strict";
import fs from "node:fs";
import { after, describe, test } from "node:test";
import { missingDebianPackage } from "../support/debian-package.ts";
import { makeSelfSignedCert } from "../support/self-signed-cert.ts";
import { addDevice, type BridgeProcess, makeTempDir, startBridgeProcess } from "./support/bridge-process.ts";
import { connectDevice, type TestDevice } from "./support/device.ts";

const missing = missingDebianPackage("openssl", "openssl");
const dataDir = makeTempDir("bridge-tls-");
let bridge: BridgeProcess | undefined;
let dev: TestDevice | undefined;

after(async () => {
  await dev?.end();
  await bridge?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe("MQTT over TLS end to end", { skip: missing }, () => {
  test("a device connects with TLS to the port from the start line and its credentials work as over TCP", async () => {
    const { certFile: cert, keyFile: key, made, stderr } = makeSelfSignedCert(dataDir, "127.0.0.1", "IP:127.0.0.1");
    assert.ok(made, stderr);
    const secret = addDevice(dataDir, "tls-1", "cbor");
    bridge = await startBridgeProcess({ dataDir, args: ["--tls-cert", cert, "--tls-key", key, "--tls-port", "0"] });
    const mqtts = bridge.addresses.mqtts;
    assert.ok(mqtts && mqtts.port > 0, `the start line reports the TLS listener: ${JSON.stringify(bridge.addresses)}`);
    dev = await connectDevice({
      port: mqtts.port,
      url: `mqtts://127.0.0.1:${mqtts.port}`,
      ca: fs.readFileSync(cert),
      id: "tls-1",
      secret,
      codec: "cbor",
    });
    await dev.send("rpc", { id: "p", m: "ping", a: [] });
    assert.equal((await dev.waitFor("rpc", (f) => f.id === "p")).ok, true);
    const ready = (await (await fetch(`http://127.0.0.1:${bridge.httpPort}/readyz`)).json()) as {
      listeners: { mqtts: { port: number } };
    };
    assert.equal(ready.listeners.mqtts.port, mqtts.port);
  });
});
