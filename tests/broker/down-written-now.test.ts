/**
 * QoS 0 down frames are written to the session's stream on the spot (broker/down-write-now.ts) when nothing of the
 * session is still in aedes' deferred path and its stream is not full; otherwise they go through aedes as before.
 * Frames must reach the device in the order the agent sent them across every switch between the two paths, over
 * every transport, and none may be lost while the device's socket is backed up.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import mqttPacket from "mqtt-packet";
import type { ConnectionTransport } from "../../agents/host.ts";
import type { DownMessage } from "../../codecs/frames.ts";
import {
  collect,
  connectDevice,
  connectPacket,
  connectRaw,
  endClient,
  serveUpgrades,
  startTestBroker,
  subscribe,
  type TestBroker,
  waitUntil,
} from "./helpers.ts";
import { OPCODE_BINARY, rawWebSocket } from "./raw-websocket.ts";
import { tlsMaterial } from "./tls-material.ts";

/** aedes' options, read at each wait for drain (not in its typings). */
interface AedesWithOpts {
  opts: { drainTimeout: number };
}

const chunk = (id: string, seq: number, text = `t${seq}`): DownMessage => ({
  channel: "reason",
  frame: { id, seq, text },
});
const fin = (id: string, seq: number): DownMessage => ({
  channel: "reason",
  frame: { id, seq, fin: true, fr: "stop" },
});

/** What the device received on `down/reason`, as `id:seq` (`id:seq!` for a final frame), in arrival order. */
function reasonOrder(inbox: Array<{ topic: string; payload: Buffer }>): string[] {
  return inbox
    .filter((m) => m.topic.endsWith("/down/reason"))
    .map((m) => {
      const frame = JSON.parse(m.payload.toString("utf8")) as { id: string; seq: number; fin?: boolean };
      return `${frame.id}:${frame.seq}${frame.fin === true ? "!" : ""}`;
    });
}

/**
 * Two answers streamed back to back: the first answer's final frame (QoS 1, through aedes) is followed in the same
 * tick by the second answer's first chunks, which must wait behind it; later chunks, sent once aedes wrote those, are
 * written on the spot; the second answer's final frame goes through aedes after them, and a third answer's chunks in
 * the same tick wait behind that one. Returns the order the agent sent, in `reasonOrder`'s notation.
 */
async function streamAcrossTheSwitch(transport: ConnectionTransport): Promise<string[]> {
  transport.send(chunk("q1", 0), { qos: 0 });
  transport.send(fin("q1", 1), { qos: 0 });
  for (let seq = 0; seq < 3; seq++) transport.send(chunk("q2", seq), { qos: 0 });
  // Long enough for aedes to have written the first final frame and the chunks queued behind it.
  await new Promise((resolve) => setTimeout(resolve, 50));
  for (let seq = 3; seq < 6; seq++) transport.send(chunk("q2", seq), { qos: 0 });
  transport.send(fin("q2", 6), { qos: 0 });
  for (let seq = 0; seq < 2; seq++) transport.send(chunk("q3", seq), { qos: 0 });
  await new Promise((resolve) => setTimeout(resolve, 50));
  transport.send(chunk("q3", 2), { qos: 0 });
  transport.send(fin("q3", 3), { qos: 0 });
  return [
    "q1:0",
    "q1:1!",
    ...[0, 1, 2, 3, 4, 5].map((s) => `q2:${s}`),
    "q2:6!",
    ...[0, 1, 2].map((s) => `q3:${s}`),
    "q3:3!",
  ];
}

describe("QoS 0 down frames written on the spot, over TCP", () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startTestBroker();
  });
  after(() => tb.close());

  test("chunks and final frames arrive in the order sent, across switches between aedes' path and the direct one", async () => {
    const secret = await tb.addDevice("order", "json");
    const client = await connectDevice(tb.url, { clientId: "order", username: "order", password: secret });
    try {
      const inbox = collect(client);
      await subscribe(client, "devices/order/down/#", 1);
      const sent = await streamAcrossTheSwitch(tb.host.transportOf("order"));
      await waitUntil(() => reasonOrder(inbox).length === sent.length);
      assert.deepEqual(reasonOrder(inbox), sent);
      assert.deepEqual(
        inbox.filter((m) => m.topic.endsWith("/down/reason")).map((m) => m.qos),
        sent.map((s) => (s.endsWith("!") ? 1 : 0)),
        "chunks at QoS 0, final frames at QoS 1",
      );
    } finally {
      await endClient(client);
    }
  });

  test("a persistent session gets every frame, in order: frames sent while aedes stores a QoS 1 frame wait behind it", async () => {
    const secret = await tb.addDevice("order-kept", "json");
    const client = await connectDevice(tb.url, {
      clientId: "order-kept",
      username: "order-kept",
      password: secret,
      clean: false,
    });
    try {
      const inbox = collect(client);
      await subscribe(client, "devices/order-kept/down/#", 1);
      const sent = await streamAcrossTheSwitch(tb.host.transportOf("order-kept"));
      await waitUntil(() => reasonOrder(inbox).length === sent.length);
      assert.deepEqual(reasonOrder(inbox), sent);
    } finally {
      await endClient(client);
    }
  });

  test("a command and the state frame sent right after it both reach a persistent session, in order", async () => {
    const secret = await tb.addDevice("kept-cmd", "json");
    const client = await connectDevice(tb.url, {
      clientId: "kept-cmd",
      username: "kept-cmd",
      password: secret,
      clean: false,
    });
    try {
      const inbox = collect(client);
      await subscribe(client, "devices/kept-cmd/down/#", 1);
      const transport = tb.host.transportOf("kept-cmd");
      const { downDropped, messagesOut } = tb.broker.stats();
      transport.send({ channel: "cmd", frame: { id: "c1", n: "reboot" } }, { qos: 1 });
      transport.send({ channel: "state", frame: { v: 2, d: { led: "on" } } }, { qos: 0 });
      transport.send({ channel: "cmd", frame: { id: "c2", n: "blink" } }, { qos: 1 });
      await waitUntil(() => inbox.length === 3);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(
        inbox.map((m) => [m.topic.split("/").at(-1), m.qos]),
        [
          ["cmd", 1],
          ["state", 0],
          ["cmd", 1],
        ],
      );
      assert.equal(tb.broker.stats().downDropped, downDropped);
      assert.equal(tb.broker.stats().messagesOut, messagesOut + 3);
    } finally {
      await endClient(client);
    }
  });

  test("QoS 0 frames behind a persistent session's QoS 1 frame at the session's end are dropped, counted", async () => {
    const id = "kept-gone";
    const secret = await tb.addDevice(id, "json");
    const device = await connectRaw(tb.port, {
      clientId: id,
      username: id,
      password: Buffer.from(secret),
      clean: false,
    });
    try {
      device.burst([{ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: `devices/${id}/down/#`, qos: 1 }] }]);
      await waitUntil(() => device.packets.some((p) => p.cmd === "suback"));
      device.socket.pause();
      const transport = tb.host.transportOf(id);
      const { downDropped, messagesOut } = tb.broker.stats();
      // Chunks fill the stream, so aedes writes the command and then waits for a drain that does not come.
      const big = "x".repeat(60_000);
      for (let seq = 0; seq < 400; seq++) transport.send(chunk("big", seq, big), { qos: 0 });
      transport.send({ channel: "cmd", frame: { id: "c1", n: "reboot" } }, { qos: 1 });
      for (let seq = 0; seq < 3; seq++) transport.send(chunk("behind", seq), { qos: 0 });
      // aedes writes what it took and the command on later ticks; the wait after is for the last three going out too.
      await waitUntil(() => tb.broker.stats().messagesOut >= messagesOut + 401);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(tb.broker.stats().messagesOut, messagesOut + 401, "the last three wait behind the command");
      device.socket.destroy();
      await tb.host.waitFor(() => tb.host.closes(id).length === 1);
      await waitUntil(() => tb.broker.stats().downDropped === downDropped + 3);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(tb.broker.stats().downDropped, downDropped + 3, "each counted once");
      assert.equal(tb.broker.stats().messagesOut, messagesOut + 401);
    } finally {
      device.socket.destroy();
    }
  });

  test("a device whose socket is backed up loses nothing and gets every frame in order once it reads again", async () => {
    const id = "backed-up";
    const secret = await tb.addDevice(id, "json");
    const device = await connectRaw(tb.port, { clientId: id, username: id, password: Buffer.from(secret) });
    try {
      device.burst([{ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: `devices/${id}/down/#`, qos: 0 }] }]);
      await waitUntil(() => device.packets.some((p) => p.cmd === "suback"));
      await waitUntil(() => tb.broker.isOnline(id));
      device.socket.pause();
      const transport = tb.host.transportOf(id);
      const dropped = tb.broker.stats().downDropped;
      const out = tb.broker.stats().messagesOut;
      // 400 chunks of about 60 KB (24 MB), a few per tick, are far more than loopback's socket buffers hold: the first
      // are written on the spot, the rest through aedes once the stream is full.
      const big = "x".repeat(60_000);
      const FRAMES = 400;
      for (let seq = 0; seq < FRAMES; seq++) {
        transport.send(chunk("big", seq, big), { qos: 0 });
        if (seq % 8 === 7) await new Promise((resolve) => setImmediate(resolve));
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
      const publishes = (): mqttPacket.IPublishPacket[] =>
        device.packets.filter((p): p is mqttPacket.IPublishPacket => p.cmd === "publish");
      assert.ok(publishes().length < FRAMES, "the device's socket is backed up");
      device.socket.resume();
      await waitUntil(() => publishes().length === FRAMES, 20_000);
      // Once it drained, frames are written on the spot again, after everything before them.
      transport.send(chunk("after", 0), { qos: 0 });
      transport.send(fin("after", 1), { qos: 0 });
      await waitUntil(() => publishes().length === FRAMES + 2);
      const seqs = publishes().map((p) => {
        const frame = JSON.parse(p.payload.toString()) as { id: string; seq: number };
        return `${frame.id}:${frame.seq}`;
      });
      assert.deepEqual(seqs, [...Array.from({ length: FRAMES }, (_, s) => `big:${s}`), "after:0", "after:1"]);
      assert.equal(tb.broker.stats().downDropped, dropped, "nothing dropped");
      assert.equal(tb.broker.stats().messagesOut, out + FRAMES + 2, "every frame counted once");
      assert.ok(tb.broker.isOnline(id));
    } finally {
      device.socket.destroy();
    }
  });

  test("a device that stops reading while chunks fill its socket is still cut by aedes' drain timeout", async () => {
    const id = "never-drains";
    const own = await startTestBroker();
    try {
      const secret = await own.addDevice(id, "json");
      const device = await connectRaw(own.port, { clientId: id, username: id, password: Buffer.from(secret) });
      device.burst([{ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: `devices/${id}/down/#`, qos: 0 }] }]);
      await waitUntil(() => device.packets.some((p) => p.cmd === "suback"));
      device.socket.pause();
      const transport = own.host.transportOf(id);
      // aedes' drainTimeout (60 s by default, not a broker option) shortened on this broker's aedes for the test.
      const { connection } = transport as unknown as { connection: { client: { broker: AedesWithOpts } } };
      connection.client.broker.opts.drainTimeout = 300;
      // Once the stream is full, the next chunk goes through aedes, which waits for the drain that never comes.
      const big = "x".repeat(60_000);
      for (let seq = 0; seq < 400; seq++) {
        transport.send(chunk("big", seq, big), { qos: 0 });
        if (seq % 8 === 7) await new Promise((resolve) => setImmediate(resolve));
      }
      await own.host.waitFor(() => own.host.closes(id).length === 1);
      assert.deepEqual(
        own.host.closes(id).map((c) => c.reason),
        ["error"],
      );
      device.socket.destroy();
    } finally {
      await own.close();
    }
  });

  test("frames sent once the device's connection is gone are dropped and counted, on either path", async () => {
    const secret = await tb.addDevice("gone-now", "json");
    const client = await connectDevice(tb.url, { clientId: "gone-now", username: "gone-now", password: secret });
    await subscribe(client, "devices/gone-now/down/#", 1);
    const transport = tb.host.transportOf("gone-now");
    await endClient(client);
    await tb.host.waitFor(() => tb.host.closes("gone-now").length === 1);
    const { downDropped, messagesOut } = tb.broker.stats();
    transport.send(chunk("late", 0), { qos: 0 });
    transport.send(fin("late", 1), { qos: 0 });
    assert.equal(tb.broker.stats().downDropped, downDropped + 2);
    assert.equal(tb.broker.stats().messagesOut, messagesOut);
  });
});

describe("QoS 0 down frames written on the spot, over WebSocket", () => {
  let tb: TestBroker;
  let server: Awaited<ReturnType<typeof serveUpgrades>>;
  before(async () => {
    tb = await startTestBroker();
    server = await serveUpgrades(tb.broker);
  });
  after(async () => {
    await tb.close();
    await server.close();
  });

  test("an mqtt.js client over WebSocket gets chunks and final frames in order", async () => {
    const secret = await tb.addDevice("ws-order", "json");
    const client = await connectDevice(server.url, { clientId: "ws-order", username: "ws-order", password: secret });
    try {
      const inbox = collect(client);
      await subscribe(client, "devices/ws-order/down/#", 1);
      const sent = await streamAcrossTheSwitch(tb.host.transportOf("ws-order"));
      await waitUntil(() => reasonOrder(inbox).length === sent.length);
      assert.deepEqual(reasonOrder(inbox), sent);
    } finally {
      await endClient(client);
    }
  });

  test("chunks the agent sends in one tick are written together and leave in one WebSocket frame", async () => {
    const secret = await tb.addDevice("ws-now", "json");
    const ws = await rawWebSocket(server.port);
    try {
      ws.send(connectPacket("ws-now", secret));
      await waitUntil(() => tb.broker.isOnline("ws-now"));
      ws.send(
        mqttPacket.generate({
          cmd: "subscribe",
          messageId: 1,
          subscriptions: [{ topic: "devices/ws-now/down/#", qos: 0 }],
        }),
      );
      await waitUntil(() => ws.packets.some((p) => p.cmd === "suback"));
      const framesBefore = ws.frames.filter((f) => f.opcode === OPCODE_BINARY).length;
      const transport = tb.host.transportOf("ws-now");
      // Through aedes each chunk is written in its own turn of the check phase, and so leaves in its own frame.
      for (let seq = 0; seq < 5; seq++) transport.send(chunk("w", seq), { qos: 0 });
      const publishes = (): mqttPacket.IPublishPacket[] =>
        ws.packets.filter((p): p is mqttPacket.IPublishPacket => p.cmd === "publish");
      await waitUntil(() => publishes().length === 5);
      assert.deepEqual(
        publishes().map((p) => (JSON.parse(p.payload.toString()) as { seq: number }).seq),
        [0, 1, 2, 3, 4],
      );
      assert.equal(ws.frames.filter((f) => f.opcode === OPCODE_BINARY).length - framesBefore, 1);
    } finally {
      ws.destroy();
    }
  });
});

describe("QoS 0 down frames written on the spot, over TLS", () => {
  test("a device over TLS gets chunks and final frames in order", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "broker-tls-now-"));
    const { cert, key } = tlsMaterial(dir);
    const tb = await startTestBroker({ tls: { host: "127.0.0.1", port: 0, cert, key } });
    try {
      const url = `mqtts://127.0.0.1:${tb.broker.addresses().tls?.port}`;
      const secret = await tb.addDevice("tls-order", "json");
      const client = await connectDevice(url, {
        clientId: "tls-order",
        username: "tls-order",
        password: secret,
        ca: cert,
      });
      try {
        const inbox = collect(client);
        await subscribe(client, "devices/tls-order/down/#", 1);
        const sent = await streamAcrossTheSwitch(tb.host.transportOf("tls-order"));
        await waitUntil(() => reasonOrder(inbox).length === sent.length);
        assert.deepEqual(reasonOrder(inbox), sent);
      } finally {
        await endClient(client);
      }
    } finally {
      await tb.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
