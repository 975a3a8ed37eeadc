import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { after, before, describe, test } from "node:test";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import type { BrokerOptions } from "../../broker/index.ts";
import { PROXY_HEADER_WARNING, PROXY_UNTRUSTED_WARNING } from "../../broker/proxy-refusals.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { connectPacket, startTestBroker, type TestBroker, waitUntil } from "./helpers.ts";
import { tlsMaterial } from "./tls-material.ts";
import { tlv, v1Header, v2Header, v2LocalHeader } from "./proxy-header-builders.ts";

/** The balancer: the loopback address the test's sockets come from unless they pick another. */
const BALANCER = "127.0.0.1";
interface Via {
  /** Source address of the TCP connection (another loopback address stands for another machine). */
  localAddress?: string;
  /** TLS on top of the header, trusting this CA. */
  ca?: Buffer;
}

/** An mqtt.js device whose TCP connection first carries `header`, as a balancer in front of the broker writes it. */
function connectBehindBalancer(
  port: number,
  header: Buffer,
  options: IClientOptions,
  via: Via = {},
): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = new mqtt.MqttClient(
      () => {
        const raw = net.connect({ port, host: "127.0.0.1", localAddress: via.localAddress });
        raw.write(header);
        // A TLS-passthrough balancer: the header on the TCP connection, then the client's own TLS bytes.
        return via.ca === undefined ? raw : tls.connect({ socket: raw, ca: via.ca, servername: "localhost" });
      },
      { reconnectPeriod: 0, connectTimeout: 5000, protocolVersion: 4, ...options },
    );
    client.once("connect", () => resolve(client));
    client.once("error", (err) => {
      client.end(true);
      reject(err);
    });
    client.once("close", () => reject(new Error("closed without a CONNACK")));
  });
}

function end(client: MqttClient): Promise<void> {
  return new Promise((resolve) => client.end(false, {}, () => resolve()));
}

/**
 * What a socket that writes `bytes` gets back before the broker closes it; with `thenEnd`, the socket ends its side
 * after writing, as a balancer's health check does.
 */
async function refusedBytes(
  port: number,
  bytes: Buffer,
  options: { localAddress?: string; thenEnd?: boolean } = {},
): Promise<Buffer> {
  const socket = net.connect({ port, host: "127.0.0.1", localAddress: options.localAddress });
  socket.on("error", () => {});
  const received: Buffer[] = [];
  socket.on("data", (d) => received.push(d));
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  if (options.thenEnd === true) socket.end(bytes);
  else socket.write(bytes);
  await closed;
  return Buffer.concat(received);
}

function behindBalancer(overrides: Partial<Omit<BrokerOptions, "host">> = {}): Promise<TestBroker> {
  return startTestBroker({
    tcp: { host: "127.0.0.1", port: 0, proxyProtocol: { trustedSources: [BALANCER] } },
    ...overrides,
  });
}

function warnings(tb: TestBroker, msg: string): Array<Record<string, unknown>> {
  return tb.logger.lines.filter((l) => l.msg === msg).map((l) => l.obj);
}

describe("PROXY protocol on the TCP listener", () => {
  let tb: TestBroker;
  let secret: string;

  before(async () => {
    tb = await behindBalancer();
    secret = await tb.addDevice("pp-dev");
    await tb.addDevice("pp-other");
  });
  after(() => tb.close());

  test("a device behind a v1 header counts under the header's client address", async () => {
    const client = await connectBehindBalancer(tb.port, v1Header("203.0.113.7"), {
      clientId: "pp-dev",
      username: "pp-dev",
      password: secret,
    });
    try {
      const context = tb.host.opens("pp-dev").at(-1)?.init.context;
      assert.equal(context?.remoteAddress, "203.0.113.7");
      assert.equal(context?.transport, "tcp");
    } finally {
      await end(client);
    }
  });

  test("a device behind a v2 header with TLVs counts under its IPv6 client address, and its MQTT is read whole", async () => {
    const header = v2Header("2001:db8::7", 51000, tlv(0xea, Buffer.from("\x01vpce-0123456789abcdef")));
    const client = await connectBehindBalancer(tb.port, header, {
      clientId: "pp-dev",
      username: "pp-dev",
      password: secret,
    });
    try {
      assert.equal(tb.host.opens("pp-dev").at(-1)?.init.context?.remoteAddress, "2001:db8::7");
      await new Promise<void>((resolve, reject) =>
        client.publish("devices/pp-dev/up/telemetry/json", '{"r":{"t":1}}', { qos: 1 }, (err) =>
          err ? reject(err) : resolve(),
        ),
      );
      assert.deepEqual(tb.host.deliveries("pp-dev").at(-1)?.message.frame, { r: { t: 1 } });
    } finally {
      await end(client);
    }
  });

  test("a v2 LOCAL header (a balancer's health check) is served under the balancer's own address", async () => {
    const client = await connectBehindBalancer(tb.port, v2LocalHeader(), {
      clientId: "pp-dev",
      username: "pp-dev",
      password: secret,
    });
    try {
      assert.equal(tb.host.opens("pp-dev").at(-1)?.init.context?.remoteAddress, BALANCER);
    } finally {
      await end(client);
    }
    // A health check that sends its LOCAL header and leaves, or opens and closes with no byte, is no fault.
    const breaches = tb.broker.stats().limitBreaches.BRIDGE_ERR_PROXY_HEADER ?? 0;
    assert.deepEqual(await refusedBytes(tb.port, v2LocalHeader(), { thenEnd: true }), Buffer.alloc(0));
    assert.deepEqual(await refusedBytes(tb.port, Buffer.alloc(0), { thenEnd: true }), Buffer.alloc(0));
    assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_PROXY_HEADER ?? 0, breaches);
  });
});

describe("PROXY protocol refusals", () => {
  test("a connection without a header, or with a malformed or oversized one, is closed before MQTT and counted; other devices are served", async () => {
    const tb = await behindBalancer();
    try {
      const secret = await tb.addDevice("pp-dev");
      const cases: Array<[string, Buffer]> = [
        ["malformed", connectPacket("pp-dev", secret)],
        [
          "malformed",
          Buffer.concat([Buffer.from("PROXY TCP4 999.0.0.1 127.0.0.1 1 2\r\n"), connectPacket("pp-dev", secret)]),
        ],
        ["too-large", Buffer.from(`PROXY TCP4 ${" ".repeat(200)}`)],
      ];
      for (const [, bytes] of cases) {
        assert.deepEqual(await refusedBytes(tb.port, bytes), Buffer.alloc(0), "no CONNACK, no byte at all");
      }
      assert.equal(tb.host.opens("pp-dev").length, 0, "no CONNECT reached authentication");
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_PROXY_HEADER, cases.length);
      // Logged once for the balancer's address within the interval, with the reason of the first.
      const lines = warnings(tb, PROXY_HEADER_WARNING);
      assert.equal(lines.length, 1);
      assert.equal(lines[0].remoteAddress, BALANCER);
      assert.equal(lines[0].reason, "malformed");
      assert.equal(lines[0].transport, "tcp");

      const client = await connectBehindBalancer(tb.port, v1Header("203.0.113.8"), {
        clientId: "pp-dev",
        username: "pp-dev",
        password: secret,
      });
      await end(client);
    } finally {
      await tb.close();
    }
  });

  test("a header not complete within headerTimeoutMs closes its connection alone", async () => {
    const clock = new ManualClock();
    const tb = await behindBalancer({
      clock,
      registryCheckMs: 0,
      tcp: { host: "127.0.0.1", port: 0, proxyProtocol: { trustedSources: [BALANCER], headerTimeoutMs: 1000 } },
    });
    try {
      const secret = await tb.addDevice("pp-dev");
      const slow = net.connect({ port: tb.port, host: "127.0.0.1" });
      slow.on("error", () => {});
      const slowClosed = new Promise<void>((resolve) => slow.once("close", () => resolve()));
      slow.write("PROXY TCP4 203.0.113.9 ");
      // The broker set the header's timer once it took the connection.
      await waitUntil(() => clock.pending === 1);
      clock.advanceSync(999);
      // A device behind a complete header is served meanwhile.
      const client = await connectBehindBalancer(tb.port, v1Header("203.0.113.8"), {
        clientId: "pp-dev",
        username: "pp-dev",
        password: secret,
      });
      assert.equal(slow.destroyed, false);
      clock.advanceSync(1);
      await slowClosed;
      assert.equal(client.connected, true, "the slow connection's end is its own");
      await end(client);
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_PROXY_HEADER, 1);
      assert.equal(warnings(tb, PROXY_HEADER_WARNING)[0]?.reason, "timeout");
    } finally {
      await tb.close();
    }
  });

  test("a connection from outside trustedSources is closed, even with a valid header", async () => {
    const tb = await behindBalancer();
    try {
      const secret = await tb.addDevice("pp-dev");
      const direct = Buffer.concat([v1Header("203.0.113.7"), connectPacket("pp-dev", secret)]);
      assert.deepEqual(await refusedBytes(tb.port, direct, { localAddress: "127.0.0.3" }), Buffer.alloc(0));
      assert.deepEqual(
        await refusedBytes(tb.port, connectPacket("pp-dev", secret), { localAddress: "127.0.0.3" }),
        Buffer.alloc(0),
      );
      assert.equal(tb.host.opens("pp-dev").length, 0);
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_PROXY_UNTRUSTED, 2);
      const lines = warnings(tb, PROXY_UNTRUSTED_WARNING);
      assert.equal(lines.length, 1, "once per address within the interval");
      assert.equal(lines[0].remoteAddress, "127.0.0.3");
    } finally {
      await tb.close();
    }
  });

  test("the connect guard counts failures under the header's address, so one client's failures block only itself", async () => {
    const tb = await behindBalancer({ limits: { authFailuresPerAddress: 2 } });
    try {
      const secret = await tb.addDevice("pp-dev");
      const wrong = { clientId: "pp-dev", username: "pp-dev", password: "wrong-secret" };
      for (let i = 0; i < 2; i++) {
        await assert.rejects(connectBehindBalancer(tb.port, v1Header("203.0.113.66"), wrong), { code: 4 });
      }
      // That client is blocked now, even with the right secret ...
      await assert.rejects(connectBehindBalancer(tb.port, v1Header("203.0.113.66"), { ...wrong, password: secret }), {
        code: 5,
      });
      // ... while another client behind the same balancer is not.
      const client = await connectBehindBalancer(tb.port, v2Header("203.0.113.7"), { ...wrong, password: secret });
      await end(client);
      assert.equal(tb.broker.stats().authFailures["address-blocked"], 1);
    } finally {
      await tb.close();
    }
  });

  test("a device cut for a packet too large is logged under the header's address", async () => {
    const tb = await behindBalancer();
    try {
      const secret = await tb.addDevice("pp-dev");
      const client = await connectBehindBalancer(tb.port, v1Header("203.0.113.7"), {
        clientId: "pp-dev",
        username: "pp-dev",
        password: secret,
      });
      client.on("error", () => {});
      client.publish("devices/pp-dev/up/telemetry", Buffer.alloc(200_000, 1), { qos: 0 });
      await waitUntil(() => warnings(tb, "MQTT packet too large; connection cut").length === 1);
      assert.equal(warnings(tb, "MQTT packet too large; connection cut")[0].remoteAddress, "203.0.113.7");
      client.end(true);
    } finally {
      await tb.close();
    }
  });
});

describe("PROXY protocol on the TLS listener", () => {
  let tb: TestBroker;
  let cert: Buffer;
  let tlsPort: number;
  let secret: string;
  let dir: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "broker-pp-tls-"));
    const material = tlsMaterial(dir);
    cert = material.cert;
    tb = await startTestBroker({
      tcp: false,
      tls: { host: "127.0.0.1", port: 0, ...material, proxyProtocol: { trustedSources: [BALANCER] } },
    });
    tlsPort = tb.broker.addresses().tls?.port ?? 0;
    secret = await tb.addDevice("pp-tls");
  });
  after(async () => {
    await tb.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("the header comes before the TLS handshake, which runs on the rest of the connection", async () => {
    for (const [header, address] of [
      [v2Header("198.51.100.20"), "198.51.100.20"],
      [v1Header("2001:db8::20"), "2001:db8::20"],
    ] as const) {
      const client = await connectBehindBalancer(
        tlsPort,
        header,
        { clientId: "pp-tls", username: "pp-tls", password: secret },
        { ca: cert },
      );
      try {
        const context = tb.host.opens("pp-tls").at(-1)?.init.context;
        assert.equal(context?.remoteAddress, address);
        assert.equal(context?.transport, "tls");
      } finally {
        await end(client);
      }
    }
  });

  test("a TLS handshake without a header first is refused", async () => {
    const refused = await new Promise<string>((resolve) => {
      const socket = tls.connect({ port: tlsPort, host: "127.0.0.1", ca: cert, servername: "localhost" });
      socket.once("secureConnect", () => resolve("handshake completed"));
      socket.once("error", (err) => resolve(err.message));
      socket.once("close", () => resolve("closed"));
    });
    assert.notEqual(refused, "handshake completed");
    await waitUntil(() => (tb.broker.stats().limitBreaches.BRIDGE_ERR_PROXY_HEADER ?? 0) === 1);
    assert.equal(warnings(tb, PROXY_HEADER_WARNING)[0]?.transport, "tls");
  });
});
