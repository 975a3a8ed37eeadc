import assert from "node:assert/strict";
import net from "node:net";
import { describe, test } from "node:test";
import mqttPacket from "mqtt-packet";
import type { DeviceRegistry } from "../../broker/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { connectPacket, startTestBroker, type TestBroker, waitUntil } from "./helpers.ts";

/** A CONNECT on its own socket from `localAddress`; `code` resolves with its CONNACK's return code. */
interface PendingConnect {
  socket: net.Socket;
  code: Promise<number>;
}

function sendConnect(tb: TestBroker, id: string, password: string, localAddress: string): PendingConnect {
  const socket = net.connect({ port: tb.port, host: "127.0.0.1", localAddress });
  socket.on("error", () => {});
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const code = new Promise<number>((resolve, reject) => {
    parser.on("packet", (packet) => {
      if (packet.cmd !== "connack") return;
      resolve(packet.returnCode ?? -1);
      socket.destroy();
    });
    socket.once("close", () => reject(new Error(`${id}: closed without a CONNACK`)));
  });
  // A socket this test closes on purpose never gets its CONNACK; that rejection is not a failure.
  code.catch(() => {});
  socket.on("data", (data) => parser.parse(data));
  socket.once("connect", () => socket.write(connectPacket(id, password)));
  return { socket, code };
}

/**
 * Watches the registry: which device ids' CONNECTs reached authentication (it reads the record first), and which
 * secrets were verified (scrypt); verifications wait while `hold` is set.
 */
interface RegistryProbe {
  reached: Set<string>;
  verified: string[];
  release(): void;
}

function probeRegistry(registry: DeviceRegistry): RegistryProbe {
  let release!: () => void;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const probe: RegistryProbe = { reached: new Set(), verified: [], release };
  const get = registry.get.bind(registry);
  registry.get = (id) => {
    probe.reached.add(id);
    return get(id);
  };
  const verify = registry.verify.bind(registry);
  registry.verify = async (id, secret) => {
    probe.verified.push(id);
    await held;
    return verify(id, secret);
  };
  return probe;
}

/** Sends the CONNECTs one after the other, each once the previous one reached authentication: a known order. */
async function connectInOrder(
  tb: TestBroker,
  probe: RegistryProbe,
  devices: Array<{ id: string; secret: string }>,
  localAddress: string,
): Promise<PendingConnect[]> {
  const pending: PendingConnect[] = [];
  for (const { id, secret } of devices) {
    pending.push(sendConnect(tb, id, secret, localAddress));
    await waitUntil(() => probe.reached.has(id));
  }
  return pending;
}

/** Closes the socket; resolves once it is closed (at once when it was already). */
function closeSocket(socket: net.Socket): Promise<void> {
  if (socket.closed) return Promise.resolve();
  return new Promise((resolve) => socket.once("close", () => resolve()).destroy());
}

/** TCP sockets open in this process, both ends of a loopback connection counted. */
function tcpSockets(): number {
  return process.getActiveResourcesInfo().filter((type) => type === "TCPSocketWrap").length;
}

async function provision(tb: TestBroker, prefix: string, n: number): Promise<Array<{ id: string; secret: string }>> {
  const devices: Array<{ id: string; secret: string }> = [];
  for (let i = 0; i < n; i++) devices.push({ id: `${prefix}-${i}`, secret: await tb.addDevice(`${prefix}-${i}`) });
  return devices;
}

describe("CONNECTs from one address beyond its failures left wait their turn (devices behind a NAT)", () => {
  test("100 devices with the right secrets connecting at once from one address all get CONNACK 0 with the default limits", async () => {
    const tb = await startTestBroker();
    try {
      // A freshly started bridge: no secret verified yet, so every CONNECT needs scrypt.
      const fleet = await provision(tb, "nat", 100);
      const codes = await Promise.all(fleet.map(({ id, secret }) => sendConnect(tb, id, secret, "127.0.0.1").code));
      assert.deepEqual(
        codes.filter((code) => code !== 0),
        [],
      );
      assert.equal(tb.broker.stats().authFailures["server-busy"], undefined);
    } finally {
      await tb.close();
    }
  });

  test("a device on another address is verified ahead of the line waiting behind a NAT", async () => {
    const tb = await startTestBroker({
      limits: { maxConcurrentVerifications: 1, maxQueuedVerifications: 16, authFailuresPerAddress: 2 },
    });
    try {
      const fleet = await provision(tb, "nat", 8);
      const [other] = await provision(tb, "other", 1);
      const probe = probeRegistry(tb.registry);
      const waiting = await connectInOrder(tb, probe, fleet, "127.0.0.1");
      const elsewhere = await connectInOrder(tb, probe, [other], "127.0.0.2");
      probe.release();
      const codes = await Promise.all([...waiting, ...elsewhere].map((c) => c.code));
      assert.deepEqual(new Set(codes), new Set([0]));
      // Two of the NAT's (its failures left) were in the shared queue before it; the rest of the line after it.
      assert.deepEqual(probe.verified, [
        "nat-0",
        "nat-1",
        "other-0",
        "nat-2",
        "nat-3",
        "nat-4",
        "nat-5",
        "nat-6",
        "nat-7",
      ]);
    } finally {
      await tb.close();
    }
  });

  test("a flood of wrong secrets costs only the address's allowance in verifications, and what waits is refused as blocked", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({
      clock,
      limits: { maxConcurrentVerifications: 1, maxQueuedVerifications: 16, authFailuresPerAddress: 3 },
    });
    try {
      const probe = probeRegistry(tb.registry);
      const ghosts = Array.from({ length: 10 }, (_, i) => ({ id: `ghost-${i}`, secret: "guess" }));
      const flood = await connectInOrder(tb, probe, ghosts, "127.0.0.1");
      assert.deepEqual(probe.verified, ["ghost-0"], "one runs, two wait in the shared queue, seven behind the address");
      probe.release();
      const codes = await Promise.all(flood.map((c) => c.code));
      assert.deepEqual(codes, [4, 4, 4, 5, 5, 5, 5, 5, 5, 5]);
      assert.deepEqual(probe.verified, ["ghost-0", "ghost-1", "ghost-2"]);
      assert.equal(tb.broker.stats().authFailures["address-blocked"], 7);
      assert.equal(tb.broker.stats().authFailures["server-busy"], undefined);
    } finally {
      await tb.close();
    }
  });

  test("CONNECTs that went away while waiting behind their address cost no verification and open no session", async () => {
    const tb = await startTestBroker({
      limits: { maxConcurrentVerifications: 1, maxQueuedVerifications: 16, authFailuresPerAddress: 2 },
    });
    try {
      const fleet = await provision(tb, "nat", 6);
      const probe = probeRegistry(tb.registry);
      const pending = await connectInOrder(tb, probe, fleet, "127.0.0.1");
      // nat-2 and nat-3 wait behind the address; their devices give up.
      const gone = pending.slice(2, 4);
      const before = tcpSockets();
      await Promise.all(gone.map(({ socket }) => closeSocket(socket)));
      // The server's ends of those two sockets close too (client and server share this process).
      await waitUntil(() => tcpSockets() <= before - 2 * gone.length);
      probe.release();
      const codes = await Promise.all([0, 1, 4, 5].map((i) => pending[i].code));
      assert.deepEqual(codes, [0, 0, 0, 0]);
      assert.deepEqual(probe.verified, ["nat-0", "nat-1", "nat-4", "nat-5"]);
      assert.deepEqual(tb.host.opens("nat-2"), []);
      assert.deepEqual(tb.host.opens("nat-3"), []);
    } finally {
      await tb.close();
    }
  });
});
