/**
 * How the bytes of a connection behind a PROXY protocol balancer reach MQTT or TLS: a header split over many TCP
 * segments, and a header that shares its segment with what follows it (HAProxy and AWS NLB write the header together
 * with the client's first bytes: its CONNECT and the PUBLISHes it pipelines, or its TLS ClientHello). Whatever the
 * split, every byte after the header reaches aedes or the TLS handshake once, in order, also when the read pacer cuts
 * the pipelined PUBLISHes at `maxInflightPerDevice`.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, test } from "node:test";
import mqtt, { type MqttClient } from "mqtt";
import mqttPacket from "mqtt-packet";
import { connectPacket, publishPacket, startTestBroker, type TestBroker, waitUntil } from "./helpers.ts";
import { v1Header, v2Header } from "./proxy-header-builders.ts";
import { fixtureTlsMaterial } from "./tls-material.ts";

const BALANCER = "127.0.0.1";

function telemetry(n: number): Buffer {
  return mqttPacket.generate(
    publishPacket("devices/pp-dev/up/telemetry/json", Buffer.from(JSON.stringify({ r: { n } })), n + 1),
  );
}

/** A raw device socket behind the balancer, with the MQTT packets the broker sent it. */
async function rawDevice(port: number): Promise<{ socket: net.Socket; received: mqttPacket.Packet[] }> {
  const socket = net.connect(port, "127.0.0.1");
  socket.setNoDelay(true);
  socket.on("error", () => {});
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const received: mqttPacket.Packet[] = [];
  parser.on("packet", (p) => received.push(p));
  socket.on("data", (d) => parser.parse(d));
  await new Promise((resolve) => socket.once("connect", resolve));
  return { socket, received };
}

/** Telemetry numbers the agent received from `pp-dev` since `from`. */
function delivered(tb: TestBroker, from: number): number[] {
  return tb.host
    .deliveries("pp-dev")
    .slice(from)
    .map((d) => (d.message.frame as { r: { n: number } }).r.n);
}

describe("PROXY protocol framing on the TCP listener", () => {
  for (const [version, header, address] of [
    ["v1", v1Header("203.0.113.7"), "203.0.113.7"],
    ["v2", v2Header("2001:db8::7"), "2001:db8::7"],
  ] as const) {
    test(`a ${version} header written one byte per segment, then the CONNECT, is read whole`, async () => {
      const tb = await startTestBroker({
        tcp: { host: "127.0.0.1", port: 0, proxyProtocol: { trustedSources: [BALANCER] } },
      });
      const device = await rawDevice(tb.port);
      try {
        const secret = await tb.addDevice("pp-dev");
        for (const byte of header) {
          device.socket.write(Buffer.from([byte]));
          await sleep(1);
        }
        device.socket.write(Buffer.concat([connectPacket("pp-dev", secret), telemetry(0)]));
        await waitUntil(() => device.received.some((p) => p.cmd === "puback"));
        assert.equal((device.received[0] as mqttPacket.IConnackPacket).returnCode, 0);
        assert.equal(tb.host.opens("pp-dev").at(-1)?.init.context?.remoteAddress, address);
        assert.deepEqual(delivered(tb, 0), [0]);
      } finally {
        device.socket.destroy();
        await tb.close();
      }
    });

    test(`a ${version} header sharing its segment with a CONNECT and more pipelined PUBLISHes than maxInflightPerDevice hands them all over in order`, async () => {
      const tb = await startTestBroker({
        tcp: { host: "127.0.0.1", port: 0, proxyProtocol: { trustedSources: [BALANCER] } },
        limits: { maxInflightPerDevice: 4 },
      });
      const device = await rawDevice(tb.port);
      try {
        const secret = await tb.addDevice("pp-dev");
        const count = 30;
        const publishes = Array.from({ length: count }, (_, n) => telemetry(n));
        device.socket.write(Buffer.concat([header, connectPacket("pp-dev", secret), ...publishes]));
        await waitUntil(() => device.received.filter((p) => p.cmd === "puback").length === count);
        assert.equal((device.received[0] as mqttPacket.IConnackPacket).returnCode, 0);
        assert.equal(tb.host.opens("pp-dev").at(-1)?.init.context?.remoteAddress, address);
        assert.deepEqual(
          delivered(tb, 0),
          Array.from({ length: count }, (_, n) => n),
        );
      } finally {
        device.socket.destroy();
        await tb.close();
      }
    });
  }
});

describe("PROXY protocol framing on the TLS listener", () => {
  /** A TLS-passthrough balancer: it writes the header and the client's first bytes (its ClientHello) in one write. */
  async function passthroughBalancer(target: number, header: Buffer): Promise<net.Server> {
    const server = net.createServer((client) => {
      client.on("error", () => {});
      client.once("data", (first) => {
        const upstream = net.connect(target, "127.0.0.1");
        upstream.on("error", () => client.destroy());
        upstream.write(Buffer.concat([header, first]));
        client.pipe(upstream).pipe(client);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return server;
  }

  test("a header sharing its segment with the ClientHello: the handshake runs on the rest", async () => {
    const { cert, key } = fixtureTlsMaterial();
    const tb = await startTestBroker({
      tcp: false,
      tls: { host: "127.0.0.1", port: 0, cert, key, proxyProtocol: { trustedSources: [BALANCER] } },
    });
    const secret = await tb.addDevice("pp-dev");
    try {
      for (const [header, address] of [
        [v2Header("198.51.100.20"), "198.51.100.20"],
        [v1Header("2001:db8::20"), "2001:db8::20"],
      ] as const) {
        const balancer = await passthroughBalancer(tb.broker.addresses().tls?.port ?? 0, header);
        let client: MqttClient | undefined;
        try {
          client = await mqtt.connectAsync(`mqtts://127.0.0.1:${(balancer.address() as net.AddressInfo).port}`, {
            clientId: "pp-dev",
            username: "pp-dev",
            password: secret,
            ca: cert,
            servername: "localhost",
            reconnectPeriod: 0,
            protocolVersion: 4,
          });
          assert.equal(tb.host.opens("pp-dev").at(-1)?.init.context?.remoteAddress, address);
        } finally {
          await client?.endAsync();
          await new Promise((resolve) => balancer.close(resolve));
        }
      }
    } finally {
      await tb.close();
    }
  });
});
