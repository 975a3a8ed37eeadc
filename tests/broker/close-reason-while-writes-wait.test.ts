/**
 * A session whose down frames wait for its socket to drain (the device reads nothing, its socket buffers are full)
 * closes with the reason it really ended for. aedes fails every write still waiting once it closes a client, and
 * reports each failure as an error of the client: those errors follow the end, and must neither turn it into an
 * `error` nor log one line per frame.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import mqttPacket from "mqtt-packet";
import type { MqttClient } from "mqtt";
import {
  connectDevice,
  connectPacket,
  endClient,
  serveUpgrades,
  startTestBroker,
  subscribe,
  type TestBroker,
  waitUntil,
} from "./helpers.ts";
import { type RawWebSocket, rawWebSocket } from "./raw-websocket.ts";

/** Down frames of about 60 KB: 400 of them (24 MB) are far more than loopback's socket buffers hold. */
const FRAMES = 400;
const FRAME_TEXT = "x".repeat(60_000);

/** The agent of `id` sends more QoS 1 commands than the sockets between broker and device can hold. */
async function backUpWrites(tb: TestBroker, id: string): Promise<void> {
  const transport = tb.host.transportOf(id);
  for (let i = 0; i < FRAMES; i++) {
    transport.send({ channel: "cmd", frame: { id: `c${i}`, n: "fill", a: { text: FRAME_TEXT } } }, { qos: 1 });
  }
  // aedes writes on later ticks; by then most of the frames wait for the socket to drain.
  await new Promise((resolve) => setTimeout(resolve, 200));
}

/** A real MQTT client, subscribed to its down frames, that stopped reading its socket with writes backed up. */
async function stalledClient(tb: TestBroker, id: string): Promise<MqttClient> {
  const secret = await tb.addDevice(id, "json");
  const client = await connectDevice(tb.url, { clientId: id, username: id, password: secret });
  await subscribe(client, `devices/${id}/down/#`, 1);
  client.stream.pause();
  await backUpWrites(tb, id);
  return client;
}

const sessionErrorLines = (tb: TestBroker, id: string): number =>
  tb.logger.lines.filter((l) => l.msg === "device session error" && l.obj.device === id).length;

describe("a session that ends while its down frames wait for the socket to drain", () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startTestBroker();
  });
  after(() => tb.close());

  test("a device that ends its connection without DISCONNECT closes as disconnect, as when nothing waits", async () => {
    const client = await stalledClient(tb, "fin");
    try {
      // A FIN: the device's side ends, without a DISCONNECT and without a reset.
      client.stream.end();
      await tb.host.waitFor(() => tb.host.closes("fin").length === 1);
      assert.deepEqual(
        tb.host.closes("fin").map((c) => c.reason),
        ["disconnect"],
      );
      assert.equal(tb.broker.stats().connectionsClosed.error, undefined);
      assert.equal(sessionErrorLines(tb, "fin"), 0, "no error line per frame that could not be written");
    } finally {
      await endClient(client, true);
    }
  });

  for (const reason of ["removed", "revoked"] as const) {
    test(`a session the operator ends (${reason}) closes as ${reason}`, async () => {
      const id = `ended-${reason}`;
      const client = await stalledClient(tb, id);
      try {
        assert.equal(tb.broker.endSessions(id, reason), 1);
        await tb.host.waitFor(() => tb.host.closes(id).length === 1);
        assert.deepEqual(
          tb.host.closes(id).map((c) => c.reason),
          [reason],
        );
      } finally {
        await endClient(client, true);
      }
    });
  }

  test("a session the runtime closes as it shuts down closes as shutdown", async () => {
    const client = await stalledClient(tb, "runtime-down");
    try {
      tb.host.transportOf("runtime-down").close("shutdown");
      await tb.host.waitFor(() => tb.host.closes("runtime-down").length === 1);
      assert.deepEqual(
        tb.host.closes("runtime-down").map((c) => c.reason),
        ["shutdown"],
      );
    } finally {
      await endClient(client, true);
    }
  });
});

describe("an MQTT WebSocket session that ends while its down frames wait for the socket to drain", () => {
  test("a client that stopped reading and sends a close frame closes as disconnect", async () => {
    const tb = await startTestBroker();
    const server = await serveUpgrades(tb.broker);
    let ws: RawWebSocket | undefined;
    try {
      const secret = await tb.addDevice("ws-fin", "json");
      ws = await rawWebSocket(server.port);
      ws.send(connectPacket("ws-fin", secret));
      await waitUntil(() => tb.broker.isOnline("ws-fin"));
      ws.send(
        mqttPacket.generate({
          cmd: "subscribe",
          messageId: 1,
          subscriptions: [{ topic: "devices/ws-fin/down/#", qos: 1 }],
        }),
      );
      const client = ws;
      await waitUntil(() => client.packets.some((p) => p.cmd === "suback"));
      ws.stopReading();
      await backUpWrites(tb, "ws-fin");
      ws.sendClose(1000);
      await tb.host.waitFor(() => tb.host.closes("ws-fin").length === 1);
      assert.deepEqual(
        tb.host.closes("ws-fin").map((c) => c.reason),
        ["disconnect"],
      );
      assert.equal(sessionErrorLines(tb, "ws-fin"), 0);
    } finally {
      ws?.destroy();
      await tb.close();
      await server.close();
    }
  });

  test("a session the broker shuts down closes as shutdown", async () => {
    const tb = await startTestBroker();
    const server = await serveUpgrades(tb.broker);
    let ws: RawWebSocket | undefined;
    try {
      const secret = await tb.addDevice("ws-down", "json");
      ws = await rawWebSocket(server.port);
      ws.send(connectPacket("ws-down", secret));
      await waitUntil(() => tb.broker.isOnline("ws-down"));
      ws.send(
        mqttPacket.generate({
          cmd: "subscribe",
          messageId: 1,
          subscriptions: [{ topic: "devices/ws-down/down/#", qos: 1 }],
        }),
      );
      const client = ws;
      await waitUntil(() => client.packets.some((p) => p.cmd === "suback"));
      ws.stopReading();
      await backUpWrites(tb, "ws-down");
      await tb.broker.close();
      assert.deepEqual(
        tb.host.closes("ws-down").map((c) => c.reason),
        ["shutdown"],
      );
      assert.equal(tb.broker.stats().connectionsClosed.shutdown, 1);
    } finally {
      ws?.destroy();
      await tb.close();
      await server.close();
    }
  });
});
