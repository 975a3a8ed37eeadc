import assert from "node:assert/strict";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import { createBroker, createDeviceRegistry } from "../../broker/index.ts";
import { getCodec } from "../../codecs/index.ts";
import {
  closed,
  connectDevice,
  connectRaw,
  endClient,
  publish,
  RecordingHost,
  startTestBroker,
  type TestBroker,
  waitUntil,
} from "./helpers.ts";

const cbor = getCodec("cbor");

describe("broker session lifecycle", () => {
  let tb: TestBroker;
  let secret: string;

  before(async () => {
    tb = await startTestBroker();
    secret = await tb.addDevice("dev");
  });
  after(() => tb.close());

  const options = () => ({ clientId: "dev", username: "dev", password: secret });

  test("a second session with the same client id takes over: the old one closes as takeover first", async () => {
    const first = await connectDevice(tb.url, options());
    const firstId = tb.host.opens("dev").at(-1)!.connectionId;
    const firstGone = closed(first);
    const second = await connectDevice(tb.url, options());
    try {
      await firstGone;
      const secondId = tb.host.opens("dev").at(-1)!.connectionId;
      assert.notEqual(secondId, firstId);
      const events = tb.host.events.filter((e) => e.agentId === "dev").slice(-2);
      assert.deepEqual(
        events.map((e) => [e.type, e.connectionId, e.type === "close" ? e.reason : ""]),
        [
          ["close", firstId, "takeover"],
          ["open", secondId, ""],
        ],
      );
      // The old session's end never marks the device offline: the new session is online.
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(tb.broker.isOnline("dev"), true);
      assert.equal(tb.host.closes("dev").filter((c) => c.connectionId === firstId).length, 1);
      await publish(second, "devices/dev/up/telemetry", cbor.encodeUp("telemetry", { r: { after: 1 } }));
      assert.equal(tb.host.deliveries("dev").at(-1)?.connectionId, secondId);
    } finally {
      await endClient(first, true);
      await endClient(second);
    }
    await tb.host.waitFor(() => !tb.broker.isOnline("dev"));
  });

  test("a device that vanishes with a last will closes with reason will", async () => {
    // A raw socket so the connection can be cut without a DISCONNECT packet.
    const raw = await connectRaw(tb.port, {
      clientId: "dev",
      username: "dev",
      password: Buffer.from(secret),
      will: {
        topic: "devices/dev/up/telemetry",
        payload: Buffer.from(cbor.encodeUp("telemetry", { r: { lost: 1 } })),
        qos: 1,
        retain: false,
      },
    });
    assert.equal(raw.packets.find((p) => p.cmd === "connack")?.returnCode, 0);
    const connectionId = tb.host.opens("dev").at(-1)!.connectionId;
    raw.socket.destroy();
    await tb.host.waitFor(() => tb.host.closes("dev").some((c) => c.connectionId === connectionId));
    assert.equal(tb.host.closes("dev").find((c) => c.connectionId === connectionId)?.reason, "will");
    assert.equal(tb.broker.isOnline("dev"), false);
  });

  test("a device that goes silent past its keepalive with a last will closes with reason will", async () => {
    const willPayload = Buffer.from(cbor.encodeUp("telemetry", { r: { lost: 1 } }));
    const raw = await connectRaw(tb.port, {
      clientId: "dev",
      username: "dev",
      password: Buffer.from(secret),
      keepalive: 1,
      will: { topic: "devices/dev/up/telemetry", payload: willPayload, qos: 0, retain: false },
    });
    const connectionId = tb.host.opens("dev").at(-1)!.connectionId;
    // No PINGREQ: aedes gives up after 1.5 keepalive periods ([MQTT-3.1.2-24]).
    await raw.closed;
    await tb.host.waitFor(() => tb.host.closes("dev").some((c) => c.connectionId === connectionId));
    assert.equal(tb.host.closes("dev").find((c) => c.connectionId === connectionId)?.reason, "will");
  });

  test("a device the broker disconnects for abuse closes with reason error even with a last will", async () => {
    const client = await connectDevice(tb.url, {
      ...options(),
      will: { topic: "devices/dev/up/telemetry", payload: Buffer.from("x"), qos: 0, retain: false },
    });
    const connectionId = tb.host.opens("dev").at(-1)!.connectionId;
    const gone = closed(client);
    client.publish("devices/other/up/telemetry", Buffer.from("x"), { qos: 0 });
    await gone;
    await tb.host.waitFor(() => tb.host.closes("dev").some((c) => c.connectionId === connectionId));
    assert.equal(tb.host.closes("dev").find((c) => c.connectionId === connectionId)?.reason, "error");
    await endClient(client, true);
  });

  test("a clean DISCONNECT with a will set closes with reason disconnect and no will", async () => {
    const client = await connectDevice(tb.url, {
      ...options(),
      will: { topic: "devices/dev/up/telemetry", payload: Buffer.from("x"), qos: 0, retain: false },
    });
    const connectionId = tb.host.opens("dev").at(-1)!.connectionId;
    await endClient(client);
    await tb.host.waitFor(() => tb.host.closes("dev").some((c) => c.connectionId === connectionId));
    assert.equal(tb.host.closes("dev").find((c) => c.connectionId === connectionId)?.reason, "disconnect");
  });

  test("the agent host refusing the open gets CONNACK 3 and leaves the device offline", async () => {
    tb.host.openResult = { status: "failed", code: "BRIDGE_ERR_AGENT_START", message: "no" };
    try {
      await assert.rejects(connectDevice(tb.url, options()), (err: { code?: number }) => err.code === 3);
      assert.equal(tb.broker.isOnline("dev"), false);
    } finally {
      tb.host.openResult = { status: "committed" };
    }
  });

  test("a takeover whose new session the host refuses still ends the old session it closed", async () => {
    const first = await connectDevice(tb.url, options());
    const firstId = tb.host.opens("dev").at(-1)!.connectionId;
    tb.host.openResult = { status: "failed", code: "BRIDGE_ERR_AGENT_START", message: "no" };
    try {
      await assert.rejects(connectDevice(tb.url, options()), (err: { code?: number }) => err.code === 3);
      assert.equal(tb.host.closes("dev").find((c) => c.connectionId === firstId)?.reason, "takeover");
      // The agent has let the first session go: it must not stay connected to nothing, receiving no frames.
      await waitUntil(() => !first.connected);
      assert.equal(tb.broker.isOnline("dev"), false);
    } finally {
      tb.host.openResult = { status: "committed" };
      await endClient(first, true);
    }
  });

  test("the agent closing the connection from its side ends the MQTT session", async () => {
    const client = await connectDevice(tb.url, options());
    const gone = closed(client);
    tb.host.transportOf("dev").close("agent destroyed");
    await gone;
    await tb.host.waitFor(() => !tb.broker.isOnline("dev"));
    assert.equal(tb.host.closes("dev").at(-1)?.reason, "error");
    await endClient(client, true);
  });
});

describe("broker shutdown", () => {
  test("close() while start() is binding leaves nothing listening, and start() rejects", async () => {
    const registry = createDeviceRegistry({ path: ":memory:" });
    const broker = createBroker({ host: new RecordingHost(), registry, tcp: { host: "127.0.0.1", port: 0 } });
    try {
      const started = broker.start();
      const startFailure = assert.rejects(started, (err: { code?: string }) => err.code === "BRIDGE_ERR_BROKER_CLOSED");
      await broker.close();
      await startFailure;
      const port = broker.addresses().tcp?.port;
      if (port !== undefined) {
        const refused = await new Promise<boolean>((resolve) => {
          const socket = net.connect(port, "127.0.0.1");
          socket.once("connect", () => {
            socket.destroy();
            resolve(false);
          });
          socket.once("error", () => resolve(true));
        });
        assert.equal(refused, true, "the TCP listener bound during start() is closed");
      }
    } finally {
      registry.close();
    }
  });

  test("close() ends every session with reason shutdown and refuses new connections", async () => {
    const tb = await startTestBroker();
    const secret = await tb.addDevice("s1");
    const client = await connectDevice(tb.url, { clientId: "s1", username: "s1", password: secret });
    const gone = closed(client);
    await tb.broker.close();
    await gone;
    assert.equal(tb.host.closes("s1").at(-1)?.reason, "shutdown");
    assert.deepEqual(tb.broker.connectedDevices(), []);
    await assert.rejects(connectDevice(tb.url, { clientId: "s1", username: "s1", password: secret }));
    await endClient(client, true);
    await tb.close();
  });
});
