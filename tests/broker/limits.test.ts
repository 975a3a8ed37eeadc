import assert from "node:assert/strict";
import net from "node:net";
import { describe, test } from "node:test";
import mqttPacket from "mqtt-packet";
import { socketsPerListener } from "../../broker/listener-bound.ts";
import { getCodec } from "../../codecs/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import {
  closed,
  collect,
  connackCode,
  connectDevice,
  connectRaw,
  endClient,
  publish,
  publishPacket,
  startTestBroker,
  subscribe,
  waitUntil,
} from "./helpers.ts";

const cbor = getCodec("cbor");
const telemetry = (n: number) => cbor.encodeUp("telemetry", { r: { n } });

describe("broker limits", () => {
  test("the per-device rate limit answers with an error frame, refills on the clock, and disconnects a flood", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({
      clock,
      limits: { messagesPerSecond: 2, burstMessages: 3, maxRateBreaches: 2 },
    });
    try {
      const secret = await tb.addDevice("fast");
      const client = await connectDevice(tb.url, { clientId: "fast", username: "fast", password: secret });
      const inbox = collect(client);
      await subscribe(client, "devices/fast/down/#");
      for (const n of [1, 2, 3]) await publish(client, "devices/fast/up/telemetry", telemetry(n));
      assert.equal(tb.host.deliveries("fast").length, 3);

      await publish(client, "devices/fast/up/telemetry", telemetry(4));
      await waitUntil(() => inbox.length === 1);
      assert.equal(inbox[0].topic, "devices/fast/down/error");
      const frame = cbor.decodeDown("error", inbox[0].payload);
      assert.ok(frame.ok && frame.frame.code === "BRIDGE_ERR_RATE_LIMITED");
      assert.equal(tb.host.deliveries("fast").length, 3);

      clock.advanceSync(500); // one token at 2 messages/s
      await publish(client, "devices/fast/up/telemetry", telemetry(5));
      assert.deepEqual(tb.host.deliveries("fast").at(-1)?.message.frame, { r: { n: 5 } });

      // A flood: more than maxRateBreaches refused messages in a row ends the session.
      const gone = closed(client);
      for (const n of [6, 7, 8]) client.publish("devices/fast/up/telemetry", Buffer.from(telemetry(n)), { qos: 0 });
      await gone;
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_RATE_LIMITED, 4);
      await tb.host.waitFor(() => tb.host.closes("fast").at(-1)?.reason === "error");
      await endClient(client, true);

      // The bucket belongs to the device, not the session: reconnecting does not refill it.
      const again = await connectDevice(tb.url, { clientId: "fast", username: "fast", password: secret });
      const inbox2 = collect(again);
      await subscribe(again, "devices/fast/down/#");
      await publish(again, "devices/fast/up/telemetry", telemetry(9));
      await waitUntil(() => inbox2.length === 1);
      const refused = cbor.decodeDown("error", inbox2[0].payload);
      assert.ok(refused.ok && refused.frame.code === "BRIDGE_ERR_RATE_LIMITED");
      clock.advanceSync(500);
      await publish(again, "devices/fast/up/telemetry", telemetry(10));
      assert.deepEqual(tb.host.deliveries("fast").at(-1)?.message.frame, { r: { n: 10 } });
      await endClient(again);
    } finally {
      await tb.close();
    }
  });

  test("connections beyond maxConnections get CONNACK 3, while a takeover of a connected device still works", async () => {
    const tb = await startTestBroker({ limits: { maxConnections: 2 } });
    try {
      const secrets: Record<string, string> = {};
      for (const id of ["c1", "c2", "c3"]) secrets[id] = await tb.addDevice(id);
      const opts = (id: string) => ({ clientId: id, username: id, password: secrets[id] });
      const c1 = await connectDevice(tb.url, opts("c1"));
      const c2 = await connectDevice(tb.url, opts("c2"));
      assert.equal(await connackCode(tb.url, opts("c3")), 3);
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_CONNECTION_LIMIT, 1);
      const c1again = await connectDevice(tb.url, opts("c1"));
      assert.deepEqual(tb.broker.connectedDevices().sort(), ["c1", "c2"]);
      await endClient(c1, true);
      await endClient(c1again);
      await endClient(c2);
    } finally {
      await tb.close();
    }
  });

  test("at maxConnections, a CONNECT without the secret gets the same answer whether its device is online or not", async () => {
    const tb = await startTestBroker({ limits: { maxConnections: 1 } });
    try {
      const online = await tb.addDevice("p-online");
      const offline = await tb.addDevice("p-offline");
      const device = await connectDevice(tb.url, { clientId: "p-online", username: "p-online", password: online });
      const guess = (id: string) => connackCode(tb.url, { clientId: id, username: id, password: "not-the-secret" });
      // Before the secret is known to be right, the broker being full must not tell which ids are connected.
      const codes = { online: await guess("p-online"), offline: await guess("p-offline"), unknown: await guess("p-x") };
      assert.deepEqual(codes, { online: 4, offline: 4, unknown: 4 });
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_CONNECTION_LIMIT ?? 0, 0);
      // With its secret, an offline device is refused for the limit; an online one takes its session over.
      assert.equal(await connackCode(tb.url, { clientId: "p-offline", username: "p-offline", password: offline }), 3);
      const gone = closed(device);
      const again = await connectDevice(tb.url, { clientId: "p-online", username: "p-online", password: online });
      await gone;
      assert.deepEqual(tb.broker.connectedDevices(), ["p-online"]);
      await endClient(device, true);
      await endClient(again);
    } finally {
      await tb.close();
    }
  });

  test("sockets beyond maxConnections plus headroom are closed as they arrive; freed room takes devices again", async () => {
    const tb = await startTestBroker({ limits: { maxConnections: 1 } });
    const idle: net.Socket[] = [];
    try {
      const secret = await tb.addDevice("late");
      const cap = socketsPerListener(1);
      // Sockets that never send CONNECT, as a flood would open them.
      for (let i = 0; i < cap; i++) {
        const socket = net.connect(tb.port, "127.0.0.1");
        socket.on("error", () => {});
        idle.push(socket);
        await new Promise((resolve) => socket.once("connect", resolve));
      }
      // One more is closed by the server at once: its close event comes without this side ending it.
      const refused = net.connect(tb.port, "127.0.0.1");
      refused.on("error", () => {});
      const closedAtOnce = await new Promise<boolean>((resolve) => {
        // Well before connectTimeoutMs, which would close an accepted socket that never sends CONNECT.
        const timer = setTimeout(() => resolve(false), 2000);
        refused.once("close", () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      refused.destroy();
      assert.ok(closedAtOnce, "the socket over the bound was closed by the server");
      for (const socket of idle.splice(0, 2)) socket.destroy();
      const device = await connectDevice(tb.url, { clientId: "late", username: "late", password: secret });
      await endClient(device);
    } finally {
      for (const socket of idle) socket.destroy();
      await tb.close();
    }
  });

  test("a device pipelining more up messages than maxInflightPerDevice is slowed, not cut; others are not", async () => {
    const tb = await startTestBroker({ limits: { maxInflightPerDevice: 2 } });
    try {
      const secret = await tb.addDevice("pipe");
      const otherSecret = await tb.addDevice("calm");
      const calm = await connectDevice(tb.url, { clientId: "calm", username: "calm", password: otherSecret });
      tb.host.hold = true;
      const raw = await connectRaw(tb.port, { clientId: "pipe", username: "pipe", password: Buffer.from(secret) });
      // One write: aedes would handle the three publishes of one read together; the broker lets it take two.
      raw.burst([1, 2, 3].map((n) => publishPacket("devices/pipe/up/telemetry", telemetry(n), n)));
      await tb.host.waitFor(() => tb.host.deliveries("pipe").length === 2);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(tb.host.deliveries("pipe").length, 2, "the third waits in the socket, unread");
      assert.ok(!raw.packets.some((p) => p.cmd === "puback"), "nothing was acknowledged before commit");
      assert.equal(raw.socket.destroyed, false);
      tb.host.release();
      await waitUntil(() => raw.packets.filter((p) => p.cmd === "puback").length === 3);
      assert.deepEqual(
        tb.host.deliveries("pipe").map((d) => d.message.frame),
        [1, 2, 3].map((n) => ({ r: { n } })),
      );
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_INFLIGHT_LIMIT ?? 0, 0);
      await publish(calm, "devices/calm/up/telemetry", telemetry(9));
      assert.deepEqual(tb.host.deliveries("calm").at(-1)?.message.frame, { r: { n: 9 } });
      raw.socket.destroy();
      await endClient(calm);
    } finally {
      tb.host.release();
      await tb.close();
    }
  });

  test("a device may pipeline up messages right behind its CONNECT, as MQTT 3.1.1 allows, and all are handled", async () => {
    const tb = await startTestBroker();
    const secret = await tb.addDevice("eager");
    const socket = net.connect(tb.port, "127.0.0.1");
    socket.on("error", () => {});
    try {
      await new Promise((resolve) => socket.once("connect", resolve));
      const parser = mqttPacket.parser({ protocolVersion: 4 });
      const received: mqttPacket.Packet[] = [];
      parser.on("packet", (p) => received.push(p));
      socket.on("data", (d) => parser.parse(d));
      // A device flushing its offline buffer on reconnect: [MQTT-3.1.4] lets it send before the CONNACK arrives.
      const connect = mqttPacket.generate({
        cmd: "connect",
        protocolId: "MQTT",
        protocolVersion: 4,
        clean: true,
        keepalive: 30,
        clientId: "eager",
        username: "eager",
        password: Buffer.from(secret),
      });
      const count = 60;
      const buffered = Array.from({ length: count }, (_, i) =>
        mqttPacket.generate(publishPacket("devices/eager/up/telemetry", telemetry(i), i + 1)),
      );
      socket.write(Buffer.concat([connect, ...buffered]));
      await waitUntil(() => received.filter((p) => p.cmd === "puback").length === count);
      assert.equal(received.find((p) => p.cmd === "connack")?.returnCode, 0);
      assert.deepEqual(
        tb.host.deliveries("eager").map((d) => d.message.frame),
        Array.from({ length: count }, (_, n) => ({ r: { n } })),
      );
    } finally {
      socket.destroy();
      await tb.close();
    }
  });

  test("a device pipelining a SUBSCRIBE, PINGREQs and more PUBLISHes than maxInflightPerDevice behind its CONNECT is accepted, and all are handled", async () => {
    const tb = await startTestBroker({ limits: { maxInflightPerDevice: 16 } });
    const secret = await tb.addDevice("flusher");
    const socket = net.connect(tb.port, "127.0.0.1");
    socket.on("error", () => {});
    try {
      await new Promise((resolve) => socket.once("connect", resolve));
      const parser = mqttPacket.parser({ protocolVersion: 4 });
      const received: mqttPacket.Packet[] = [];
      parser.on("packet", (p) => received.push(p));
      socket.on("data", (d) => parser.parse(d));
      // aedes queues what comes behind a CONNECT until the session is accepted, at most maxInflightPerDevice packets
      // of any kind; the broker gave it that many PUBLISHes plus the rest, so one SUBSCRIBE more cut the device, at
      // every reconnect of its offline-buffer flush.
      const count = 40;
      const packets: mqttPacket.Packet[] = [
        {
          cmd: "connect",
          protocolId: "MQTT",
          protocolVersion: 4,
          clean: true,
          keepalive: 30,
          clientId: "flusher",
          username: "flusher",
          password: Buffer.from(secret),
        },
        { cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "devices/flusher/down/#", qos: 1 }] },
        { cmd: "pingreq" },
        { cmd: "pingreq" },
        ...Array.from({ length: count }, (_, n) => publishPacket("devices/flusher/up/telemetry", telemetry(n), n + 1)),
      ];
      socket.write(Buffer.concat(packets.map((p) => mqttPacket.generate(p))));
      await waitUntil(() => received.filter((p) => p.cmd === "puback").length === count || socket.destroyed);
      assert.equal(received.find((p) => p.cmd === "connack")?.returnCode, 0);
      assert.equal(received.filter((p) => p.cmd === "suback").length, 1);
      assert.equal(received.filter((p) => p.cmd === "pingresp").length, 2);
      assert.deepEqual(
        tb.host.deliveries("flusher").map((d) => d.message.frame),
        Array.from({ length: count }, (_, n) => ({ r: { n } })),
      );
      assert.equal(socket.destroyed, false);
    } finally {
      socket.destroy();
      await tb.close();
    }
  });

  test("a device cut for a packet too large closes as error, even with a last will", async () => {
    const tb = await startTestBroker();
    try {
      const secret = await tb.addDevice("huge");
      const will = {
        topic: "devices/huge/up/telemetry",
        payload: Buffer.from(telemetry(0)),
        qos: 0 as const,
        retain: false,
      };
      for (const withWill of [false, true]) {
        const client = await connectDevice(tb.url, {
          clientId: "huge",
          username: "huge",
          password: secret,
          ...(withWill ? { will } : {}),
        });
        client.on("error", () => {});
        const before = tb.host.closes("huge").length;
        // Over the 64 KiB payload limit by far: the packet guard cuts the connection from the packet's header.
        client.publish("devices/huge/up/telemetry", Buffer.alloc(200_000, 1), { qos: 0 });
        await tb.host.waitFor(() => tb.host.closes("huge").length === before + 1);
        assert.equal(tb.host.closes("huge").at(-1)?.reason, "error", `with a will: ${withWill}`);
        await endClient(client, true);
      }
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_PACKET_TOO_LARGE, 2);
      await tb.host.waitFor(() => tb.broker.stats().connectionsClosed.error === 2);
    } finally {
      await tb.close();
    }
  });

  test("invalid limits are refused at construction with the field named", async () => {
    await assert.rejects(
      startTestBroker({ limits: { maxPayloadBytes: 0 } }),
      (err: { code?: string; details?: { field?: string } }) =>
        err.code === "BRIDGE_ERR_BROKER_CONFIG" && err.details?.field === "limits.maxPayloadBytes",
    );
    await assert.rejects(
      startTestBroker({ tcp: { port: 70000 } }),
      (err: { details?: { field?: string } }) => err.details?.field === "tcp.port",
    );
  });
});
