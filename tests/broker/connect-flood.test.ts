import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type mqttPacket from "mqtt-packet";
import { BROKER_DEFAULTS, type BrokerLimits, type DeviceRegistry } from "../../broker/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { connectRaw, type RawDevice, startTestBroker, type TestBroker } from "./helpers.ts";

/** The return code of the device's CONNACK. */
function connack(device: RawDevice): number {
  const packet = device.packets.find((p): p is mqttPacket.IConnackPacket => p.cmd === "connack");
  assert.ok(packet, "a CONNACK arrived");
  return packet.returnCode ?? -1;
}

/** Connects, notes the CONNACK code, and closes the socket. */
async function connackFrom(
  tb: TestBroker,
  id: string,
  password: string,
  localAddress: string | undefined = undefined,
): Promise<number> {
  const device = await connectRaw(
    tb.port,
    { clientId: id, username: id, password: Buffer.from(password) },
    { localAddress },
  );
  device.socket.destroy();
  return connack(device);
}

/** Secret verifications the registry ran (scrypt), by device id; each can be made slow or held. */
interface VerifyProbe {
  calls: string[];
  /** While set, each verification waits for it. */
  gate: Promise<void> | undefined;
}

function probeVerifications(registry: DeviceRegistry, delayMs = 0): VerifyProbe {
  const probe: VerifyProbe = { calls: [], gate: undefined };
  const verify = registry.verify.bind(registry);
  registry.verify = async (id, secret) => {
    probe.calls.push(id);
    // Stands for a costly scrypt: the flood's CONNECTs arrive while the first ones are still being verified.
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    await probe.gate;
    return verify(id, secret);
  };
  return probe;
}

function latch(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

describe("CONNECT floods", () => {
  test("a flood of bogus CONNECTs from one address does not stop a device on another address, and blocks the flooding address", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({
      clock,
      limits: { maxConcurrentVerifications: 1, maxQueuedVerifications: 8, authFailuresPerAddress: 5 },
    });
    try {
      const secret = await tb.addDevice("legit");
      const probe = probeVerifications(tb.registry, 20);
      const flood = Array.from({ length: 40 }, (_, i) => connackFrom(tb, `ghost-${i}`, "guess", "127.0.0.1"));
      const started = Date.now();
      const legit = await connackFrom(tb, "legit", secret, "127.0.0.2");
      const legitMs = Date.now() - started;
      const codes = await Promise.all(flood);

      assert.equal(legit, 0, "the device on another address is accepted while the flood goes on");
      assert.ok(legitMs < 2000, `it waited ${legitMs} ms, behind at most the flooding address's allowance`);
      assert.equal(codes.filter((c) => c === 4).length, 5, "the address's allowance of failures is verified");
      assert.equal(
        probe.calls.filter((id) => id.startsWith("ghost-")).length,
        5,
        "no more verifications than the allowance: the rest were refused at once",
      );
      assert.ok(
        codes.every((c) => c === 4 || c === 3 || c === 5),
        `the rest get CONNACK 5 (waited behind the address until it was blocked) or 3 (beyond its line): ${codes.join(",")}`,
      );
      assert.ok((tb.broker.stats().authFailures["unknown-device"] ?? 0) === 5);

      // Blocked now: even a device with the right secret is refused from that address, without verification.
      const callsBefore = probe.calls.length;
      assert.equal(await connackFrom(tb, "legit", secret, "127.0.0.1"), 5);
      assert.equal(probe.calls.length, callsBefore);
      assert.ok((tb.broker.stats().authFailures["address-blocked"] ?? 0) >= 1);
      // Other addresses are not affected.
      assert.equal(await connackFrom(tb, "legit", secret, "127.0.0.2"), 0);

      // After authBlockMs the address may try again.
      clock.advanceSync(BROKER_DEFAULTS.limits.authBlockMs);
      assert.equal(await connackFrom(tb, "legit", secret, "127.0.0.1"), 0);
    } finally {
      await tb.close();
    }
  });

  test("CONNECTs beyond the verifications running and waiting get CONNACK 3 at once, counted as server-busy", async () => {
    const tb = await startTestBroker({
      limits: { maxConcurrentVerifications: 1, maxQueuedVerifications: 1, authFailuresPerAddress: 0 },
    });
    try {
      const probe = probeVerifications(tb.registry);
      const held = latch();
      probe.gate = held.promise;
      const running = connackFrom(tb, "ghost-a", "x");
      await waitForCalls(probe, 1);
      const waiting = connackFrom(tb, "ghost-b", "x");
      // The third finds one running and one waiting: refused while the first is still held.
      const third = await connackFrom(tb, "ghost-c", "x");
      assert.equal(third, 3);
      assert.equal(tb.broker.stats().authFailures["server-busy"], 1);
      held.open();
      assert.deepEqual(await Promise.all([running, waiting]), [4, 4]);
      assert.deepEqual(probe.calls, ["ghost-a", "ghost-b"]);
    } finally {
      await tb.close();
    }
  });

  test("a device whose secret verified recently reconnects at once while the verification queue is full", async () => {
    const tb = await startTestBroker({
      limits: { maxConcurrentVerifications: 1, maxQueuedVerifications: 0, authFailuresPerAddress: 0 },
    });
    try {
      const secret = await tb.addDevice("known");
      assert.equal(await connackFrom(tb, "known", secret), 0);
      const probe = probeVerifications(tb.registry);
      const held = latch();
      probe.gate = held.promise;
      const bogus = connackFrom(tb, "ghost", "x");
      await waitForCalls(probe, 1);
      // The credential cache answers: no scrypt, no place in the queue.
      assert.equal(await connackFrom(tb, "known", secret), 0);
      // Someone without the secret still waits in line like everyone else (here: refused, the queue is full).
      assert.equal(await connackFrom(tb, "known", "wrong"), 3);
      held.open();
      assert.equal(await bogus, 4);
      assert.deepEqual(probe.calls, ["ghost"]);
    } finally {
      await tb.close();
    }
  });

  test("invalid CONNECT limits are refused at construction with the field named", async () => {
    const cases: Array<[keyof BrokerLimits, number]> = [
      ["maxConcurrentVerifications", 0],
      ["maxQueuedVerifications", -1],
      ["authFailuresPerAddress", 1.5],
      ["authFailureRefillMs", 0],
      ["authBlockMs", 0],
    ];
    for (const [field, value] of cases) {
      await assert.rejects(startTestBroker({ limits: { [field]: value } }), (err: Error & { details?: unknown }) => {
        assert.equal((err as { code?: string }).code, "BRIDGE_ERR_BROKER_CONFIG");
        assert.deepEqual(err.details, { field: `limits.${field}` });
        return true;
      });
    }
  });
});

async function waitForCalls(probe: VerifyProbe, n: number): Promise<void> {
  const started = Date.now();
  while (probe.calls.length < n) {
    if (Date.now() - started > 5000) throw new Error("verification never started");
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
