/**
 * The broker in front of the real agent runtime (agents/ createRuntime) with the default DeviceAgent, over real
 * loopback sockets and mqtt.js devices.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import type { MqttClient } from "mqtt";
import pino from "pino";
import { Agent, type AgentRuntime, type Connection, createRuntime, DeviceAgent } from "../../agents/index.ts";
import type { AgentHost, InboundMessage } from "../../agents/host.ts";
import { type Broker, createBroker, createDeviceRegistry, type DeviceRegistry } from "../../broker/index.ts";
import { getCodec } from "../../codecs/index.ts";
import {
  closed,
  collect,
  connectDevice,
  connectRaw,
  endClient,
  publish,
  publishPacket,
  subscribe,
  waitUntil,
} from "./helpers.ts";

const cbor = getCodec("cbor");

/** Holds every message until the test opens the gate; stores what it got, in order. */
let gate: Promise<void> = Promise.resolve();
class GateAgent extends Agent {
  override async onMessage(_conn: Connection, message: InboundMessage): Promise<void> {
    await gate;
    if (message.channel === "telemetry") {
      this.sql`CREATE TABLE IF NOT EXISTS seen (n INTEGER)`;
      this.sql`INSERT INTO seen (n) VALUES (${Number(message.frame.r?.n)})`;
    }
  }
  seen(): number[] {
    this.sql`CREATE TABLE IF NOT EXISTS seen (n INTEGER)`;
    return this.sql<{ n: number }>`SELECT n FROM seen ORDER BY rowid`.map((r) => r.n);
  }
}

describe("broker with the agent runtime", () => {
  let dir: string;
  let runtime: AgentRuntime;
  let registry: DeviceRegistry;
  let broker: Broker;
  let url: string;
  let port: number;
  const secrets: Record<string, string> = {};
  let mailboxFull = 0;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "broker-runtime-"));
    runtime = createRuntime({
      dataDir: path.join(dir, "agents"),
      defaultAgentClass: DeviceAgent,
      agentClasses: [{ pattern: "slow-*", agentClass: GateAgent }],
      mailboxCapacity: 1,
      logger: pino({ level: "silent" }),
    });
    await runtime.start();
    registry = createDeviceRegistry({ path: path.join(dir, "registry.db"), scrypt: { N: 1024, r: 8, p: 1 } });
    for (const id of ["thermo-1", "slow-1"]) {
      const added = await registry.add(id, { codec: "cbor" });
      if (added.status !== "created") throw new Error("not created");
      secrets[id] = added.secret;
    }
    // The runtime as host, counting its mailbox-full answers so the backpressure test can see them.
    const host: AgentHost = {
      open: (agentId, init) => runtime.open(agentId, init),
      close: (agentId, connectionId, reason) => runtime.close(agentId, connectionId, reason),
      deliver(agentId, connectionId, message) {
        const outcome = runtime.deliver(agentId, connectionId, message);
        if (!outcome.accepted) mailboxFull++;
        return outcome;
      },
    };
    broker = createBroker({ host, registry, tcp: { host: "127.0.0.1", port: 0 } });
    const { tcp } = await broker.start();
    port = tcp?.port ?? 0;
    url = `mqtt://127.0.0.1:${port}`;
  });
  after(async () => {
    await broker.close();
    await runtime.shutdown();
    registry.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const connect = (id: string): Promise<MqttClient> =>
    connectDevice(url, { clientId: id, username: id, password: secrets[id] });

  test("acknowledged telemetry is already stored by the DeviceAgent when the PUBACK arrives", async () => {
    const client = await connect("thermo-1");
    try {
      await publish(client, "devices/thermo-1/up/hello", cbor.encodeUp("hello", { fw: "1.4.0" }));
      for (const t of [20, 21, 22]) {
        await publish(client, "devices/thermo-1/up/telemetry", cbor.encodeUp("telemetry", { ts: 1000 + t, r: { t } }));
      }
      const rows = await runtime.call("thermo-1", "queryTelemetry", [{}]);
      assert.ok(rows.ok);
      assert.equal((rows.value as unknown[]).length, 3);
      const status = await runtime.call("thermo-1", "getStatus", []);
      assert.ok(status.ok);
      assert.equal((status.value as { online: boolean }).online, true);
      assert.equal((status.value as { firmware: string }).firmware, "1.4.0");
    } finally {
      await endClient(client);
    }
  });

  test("an rpc over MQTT is answered on down/rpc in CBOR, and a command reaches the device with QoS 1", async () => {
    const client = await connect("thermo-1");
    try {
      const inbox = collect(client);
      await subscribe(client, "devices/thermo-1/down/#");
      await publish(client, "devices/thermo-1/up/rpc", cbor.encodeUp("rpc", { id: "p1", m: "ping" }));
      await waitUntil(() => inbox.some((m) => m.topic === "devices/thermo-1/down/rpc"));
      const rpc = cbor.decodeDown("rpc", inbox.find((m) => m.topic === "devices/thermo-1/down/rpc")!.payload);
      assert.ok(rpc.ok);
      assert.equal(rpc.frame.id, "p1");
      assert.equal(rpc.frame.ok, true);

      const queued = await runtime.call("thermo-1", "sendCommand", [{ name: "blink", args: { times: 2 } }]);
      assert.ok(queued.ok);
      const commandId = (queued.value as { id: string }).id;
      await waitUntil(() => inbox.some((m) => m.topic === "devices/thermo-1/down/cmd"));
      const cmdMsg = inbox.find((m) => m.topic === "devices/thermo-1/down/cmd")!;
      assert.equal(cmdMsg.qos, 1);
      const cmd = cbor.decodeDown("cmd", cmdMsg.payload);
      assert.ok(cmd.ok);
      assert.equal(cmd.frame.id, commandId);
      assert.equal(cmd.frame.n, "blink");
      await publish(client, "devices/thermo-1/up/ack", cbor.encodeUp("ack", { id: commandId, ok: true }));
      const record = await runtime.call("thermo-1", "getCommand", [commandId]);
      assert.ok(record.ok);
      assert.equal((record.value as { state: string }).state, "SUCCEEDED");
      for (const m of inbox) assert.notEqual(m.payload[0], 0x7b, "a CBOR device never receives JSON text");
    } finally {
      await endClient(client);
    }
  });

  test("a takeover keeps the device online, and a disconnect takes it offline", async () => {
    const first = await connect("thermo-1");
    const firstGone = closed(first);
    const second = await connect("thermo-1");
    await firstGone;
    await waitUntil(() => broker.isOnline("thermo-1"));
    let status = await runtime.call("thermo-1", "getStatus", []);
    assert.ok(status.ok);
    assert.equal((status.value as { online: boolean }).online, true);
    await endClient(second);
    await endClient(first, true);
    await waitUntil(() => !broker.isOnline("thermo-1"));
    await waitUntil(() => broker.stats().connectionsClosed.disconnect !== undefined);
    status = await runtime.call("thermo-1", "getStatus", []);
    assert.ok(status.ok);
    assert.equal((status.value as { online: boolean }).online, false);
    assert.equal((status.value as { lastClose: string }).lastClose, "disconnect");
  });

  test("a busy agent with a full mailbox slows the device: PUBACKs wait, nothing is lost, order is kept", async () => {
    let open!: () => void;
    gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const raw = await connectRaw(port, {
      clientId: "slow-1",
      username: "slow-1",
      password: Buffer.from(secrets["slow-1"]),
    });
    try {
      // Five publishes in one write, so the broker offers them to the agent together and the mailbox (capacity 1) fills.
      raw.burst(
        [1, 2, 3, 4, 5].map((n) =>
          publishPacket("devices/slow-1/up/telemetry", cbor.encodeUp("telemetry", { r: { n } }), n),
        ),
      );
      await waitUntil(() => mailboxFull > 0);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.ok(
        !raw.packets.some((p) => p.cmd === "puback"),
        "nothing is acknowledged while the agent has not committed",
      );
      open();
      await waitUntil(() => raw.packets.filter((p) => p.cmd === "puback").length === 5);
      assert.deepEqual(
        raw.packets.filter((p) => p.cmd === "puback").map((p) => (p as { messageId?: number }).messageId),
        [1, 2, 3, 4, 5],
        "PUBACKs in publish order [MQTT-4.6.0-2]",
      );
      const seen = await runtime.call("slow-1", "seen", []);
      assert.ok(seen.ok);
      assert.deepEqual(seen.value, [1, 2, 3, 4, 5]);
    } finally {
      open();
      raw.socket.end();
    }
  });
});
