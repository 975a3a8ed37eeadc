import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { getCodec } from "../../codecs/index.ts";
import { missingDebianPackage } from "../support/debian-package.ts";
import {
  collect,
  connackCode,
  connectDevice,
  endClient,
  publish,
  startTestBroker,
  subscribe,
  type TestBroker,
  waitUntil,
} from "./helpers.ts";
import { tlsMaterial } from "./tls-material.ts";

const cbor = getCodec("cbor");

describe("MQTT over WebSocket", () => {
  let tb: TestBroker;
  let server: http.Server;
  let wsUrl: string;
  let secret: string;

  before(async () => {
    tb = await startTestBroker();
    secret = await tb.addDevice("ws-dev");
    server = http.createServer((_req, res) => res.writeHead(404).end());
    server.on("upgrade", (req, socket, head) => {
      if (!tb.broker.handleUpgrade(req, socket, head)) socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    wsUrl = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/mqtt`;
  });
  after(async () => {
    await tb.close();
    await new Promise((resolve) => server.close(resolve));
  });

  test("a device connects over WebSocket at /mqtt, publishes up and receives down frames", async () => {
    const client = await connectDevice(wsUrl, { clientId: "ws-dev", username: "ws-dev", password: secret });
    try {
      assert.equal(tb.host.opens("ws-dev").at(-1)?.init.context?.transport, "ws");
      assert.equal(tb.broker.stats().connectionsOpened.ws, 1);
      await publish(client, "devices/ws-dev/up/telemetry", cbor.encodeUp("telemetry", { r: { ws: 1 } }));
      assert.deepEqual(tb.host.deliveries("ws-dev").at(-1)?.message.frame, { r: { ws: 1 } });
      const inbox = collect(client);
      await subscribe(client, "devices/ws-dev/down/#");
      tb.host.transportOf("ws-dev").send({ channel: "cmd", frame: { id: "w", n: "ping" } }, { qos: 1 });
      await waitUntil(() => inbox.length === 1);
      assert.deepEqual(cbor.decodeDown("cmd", inbox[0].payload), { ok: true, frame: { id: "w", n: "ping" } });
    } finally {
      await endClient(client);
    }
  });

  test("an upgrade on another path is left to the caller", async () => {
    const code = await connackCode(wsUrl.replace("/mqtt", "/other"), {
      clientId: "ws-dev",
      username: "ws-dev",
      password: secret,
      connectTimeout: 1000,
    }).catch((err: Error) => err.message);
    assert.notEqual(code, 0);
  });

  test("a WebSocket device cut for a packet too large is logged with its address", async () => {
    const client = await connectDevice(wsUrl, {
      clientId: "ws-dev",
      username: "ws-dev",
      password: secret,
      reconnectPeriod: 0,
    });
    try {
      client.on("error", () => {});
      // Over the default 64 KiB payload limit: the guard cuts the connection from the packet's header.
      client.publish("devices/ws-dev/up/telemetry", Buffer.alloc(200_000, 1), { qos: 0 });
      await waitUntil(() => tb.logger.lines.some((l) => l.msg === "MQTT packet too large; connection cut"));
      const line = tb.logger.lines.find((l) => l.msg === "MQTT packet too large; connection cut");
      assert.equal(line?.obj.remoteAddress, "127.0.0.1");
    } finally {
      client.end(true);
    }
  });
});

describe("MQTT over TLS", () => {
  test("a device connects over TLS with a self-signed certificate and is served like over TCP", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "broker-tls-"));
    const { cert, key } = tlsMaterial(dir);
    const tb = await startTestBroker({ tls: { host: "127.0.0.1", port: 0, cert, key } });
    try {
      const port = tb.broker.addresses().tls?.port;
      assert.ok(port && port > 0);
      const secret = await tb.addDevice("tls-dev");
      const url = `mqtts://127.0.0.1:${port}`;
      const client = await connectDevice(url, { clientId: "tls-dev", username: "tls-dev", password: secret, ca: cert });
      try {
        assert.equal(tb.host.opens("tls-dev").at(-1)?.init.context?.transport, "tls");
        await publish(client, "devices/tls-dev/up/telemetry", cbor.encodeUp("telemetry", { r: { tls: 1 } }));
        assert.deepEqual(tb.host.deliveries("tls-dev").at(-1)?.message.frame, { r: { tls: 1 } });
      } finally {
        await endClient(client);
      }
      // A client that does not trust the certificate never gets through.
      await assert.rejects(connectDevice(url, { clientId: "tls-dev", username: "tls-dev", password: secret }));
    } finally {
      await tb.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("MQTT over TLS shutdown", () => {
  test("closing the broker ends a TLS connection that never finished its handshake", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "broker-tls-idle-"));
    const { cert, key } = tlsMaterial(dir);
    const tb = await startTestBroker({ tls: { host: "127.0.0.1", port: 0, cert, key } });
    // A port scanner or a device stuck before its ClientHello: TCP is up, TLS never starts.
    const idle = net.connect(tb.broker.addresses().tls?.port ?? 0, "127.0.0.1");
    idle.on("error", () => {});
    const idleClosed = new Promise<void>((resolve) => idle.once("close", () => resolve()));
    try {
      await new Promise((resolve) => idle.once("connect", resolve));
      let timer: NodeJS.Timeout | undefined;
      // Node's TLS handshake timeout is 120 s; shutdown must not wait for it.
      const stuck = new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve("still closing after 5 s"), 5000);
      });
      const outcome = await Promise.race([tb.broker.close().then(() => "closed"), stuck]);
      clearTimeout(timer);
      assert.equal(outcome, "closed");
      await idleClosed;
    } finally {
      idle.destroy();
      await tb.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("MQTT over mutual TLS", () => {
  test("with a CA configured, only a device presenting a certificate signed by it gets through", async (t) => {
    const missing = missingDebianPackage("openssl", "openssl");
    if (missing) return t.skip(missing);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "broker-mtls-"));
    const f = (name: string) => path.join(dir, name);
    const openssl = (...args: string[]) => {
      const r = spawnSync("openssl", args, { stdio: "ignore" });
      assert.equal(r.status, 0, `openssl ${args[0]} failed`);
    };
    openssl(
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      f("ca.key"),
      "-out",
      f("ca.pem"),
      "-days",
      "1",
      "-subj",
      "/CN=test-ca",
    );
    openssl(
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      f("dev.key"),
      "-out",
      f("dev.csr"),
      "-subj",
      "/CN=mtls-dev",
    );
    openssl(
      "x509",
      "-req",
      "-in",
      f("dev.csr"),
      "-CA",
      f("ca.pem"),
      "-CAkey",
      f("ca.key"),
      "-CAcreateserial",
      "-out",
      f("dev.pem"),
      "-days",
      "1",
    );
    const { cert, key } = tlsMaterial(dir);
    const tb = await startTestBroker({
      tls: { host: "127.0.0.1", port: 0, cert, key, ca: fs.readFileSync(f("ca.pem")) },
    });
    try {
      const url = `mqtts://127.0.0.1:${tb.broker.addresses().tls?.port}`;
      const secret = await tb.addDevice("mtls-dev");
      const base = { clientId: "mtls-dev", username: "mtls-dev", password: secret, ca: cert, connectTimeout: 2000 };
      const client = await connectDevice(url, {
        ...base,
        cert: fs.readFileSync(f("dev.pem")),
        key: fs.readFileSync(f("dev.key")),
      });
      await endClient(client);
      await assert.rejects(connectDevice(url, base));
    } finally {
      await tb.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

function run(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "ignore"] });
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString("utf8");
    });
    child.on("close", (code) => resolve({ code, stdout }));
  });
}

describe("third-party MQTT clients", () => {
  test("mosquitto_pub and mosquitto_sub work as devices with credentials", async (t) => {
    const missing = missingDebianPackage("mosquitto-clients", "mosquitto_pub");
    if (missing) return t.skip(missing);
    const tb = await startTestBroker();
    try {
      const pubSecret = await tb.addDevice("mq-pub", "json");
      const subSecret = await tb.addDevice("mq-sub", "json");
      const common = ["-h", "127.0.0.1", "-p", String(tb.port), "-V", "mqttv311"];

      const published = await run("mosquitto_pub", [
        ...common,
        ...["-i", "mq-pub", "-u", "mq-pub", "-P", pubSecret, "-q", "1"],
        ...["-t", "devices/mq-pub/up/telemetry", "-m", '{"r":{"t":20.5}}'],
      ]);
      assert.equal(published.code, 0);
      assert.deepEqual(tb.host.deliveries("mq-pub").at(-1)?.message, {
        channel: "telemetry",
        frame: { r: { t: 20.5 } },
      });

      const refused = await run("mosquitto_pub", [
        ...common,
        ...["-i", "mq-pub", "-u", "mq-pub", "-P", "wrong", "-t", "devices/mq-pub/up/telemetry", "-m", "{}"],
      ]);
      assert.notEqual(refused.code, 0);

      const received = run("mosquitto_sub", [
        ...common,
        ...["-i", "mq-sub", "-u", "mq-sub", "-P", subSecret, "-q", "1", "-C", "1", "-W", "20"],
        ...["-t", "devices/mq-sub/down/#"],
      ]);
      await tb.host.waitFor(() => tb.host.opens("mq-sub").length === 1, 10_000);
      const transport = tb.host.transportOf("mq-sub");
      // Send until the subscription is in place (a frame to an unsubscribed session is dropped and counted).
      await waitUntil(() => {
        const dropped = tb.broker.stats().downDropped;
        transport.send({ channel: "cmd", frame: { id: "m1", n: "hello" } }, { qos: 1 });
        return tb.broker.stats().downDropped === dropped;
      }, 10_000);
      const sub = await received;
      assert.equal(sub.code, 0);
      assert.deepEqual(JSON.parse(sub.stdout.trim()), { id: "m1", n: "hello" });
    } finally {
      await tb.close();
    }
  });
});
