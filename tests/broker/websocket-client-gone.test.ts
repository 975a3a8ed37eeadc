import assert from "node:assert/strict";
import net from "node:net";
import { describe, test } from "node:test";
import WebSocket from "ws";
import type { DeviceRegistry } from "../../broker/index.ts";
import { connectPacket, serveUpgrades, startTestBroker, waitUntil } from "./helpers.ts";

/** Records the secret verifications the registry runs, each held until `open()`. */
function holdVerifications(registry: DeviceRegistry): { calls: string[]; open: () => void } {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const calls: string[] = [];
  const verify = registry.verify.bind(registry);
  registry.verify = async (id, secret) => {
    calls.push(id);
    await gate;
    return verify(id, secret);
  };
  return { calls, open };
}

describe("an MQTT WebSocket client that goes away before its CONNECT is answered", () => {
  for (const how of ["close", "terminate"] as const) {
    test(`costs no verification and opens no session when it waited for its turn (client ${how}s)`, async () => {
      const tb = await startTestBroker({
        limits: { maxConcurrentVerifications: 1, maxQueuedVerifications: 4, authFailuresPerAddress: 0 },
      });
      const served = await serveUpgrades(tb.broker);
      const held = holdVerifications(tb.registry);
      // Holds the only verification slot: a CONNECT over TCP with a wrong secret.
      const first = net.connect(tb.port, "127.0.0.1");
      first.on("error", () => {});
      try {
        const secret = await tb.addDevice("ws-gone");
        first.write(connectPacket("ghost", "x"));
        await waitUntil(() => held.calls.length === 1);
        const ws = new WebSocket(served.url, "mqtt");
        ws.on("error", () => {});
        await new Promise((resolve) => ws.once("open", resolve));
        ws.send(connectPacket("ws-gone", secret));
        // Its CONNECT waits for the slot; then the client gives up.
        await new Promise((resolve) => setTimeout(resolve, 20));
        const gone = new Promise((resolve) => ws.once("close", resolve));
        if (how === "close") ws.close();
        else ws.terminate();
        await gone;
        // The server sees its side closed a moment later (loopback); the broker hears of it on the same turn.
        await waitUntil(() => served.upgraded.every((socket) => socket.closed));
        held.open();
        await new Promise((resolve) => first.once("data", resolve));
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.deepEqual(held.calls, ["ghost"], "no verification for a client that is gone");
        assert.deepEqual(tb.host.opens("ws-gone"), [], "no agent session for it either");
      } finally {
        first.destroy();
        await tb.close();
        await served.close();
      }
    });
  }

  test("opens no agent session when it went away while its secret was being verified", async () => {
    const tb = await startTestBroker();
    const served = await serveUpgrades(tb.broker);
    const held = holdVerifications(tb.registry);
    try {
      const secret = await tb.addDevice("ws-gone");
      const ws = new WebSocket(served.url, "mqtt");
      ws.on("error", () => {});
      await new Promise((resolve) => ws.once("open", resolve));
      ws.send(connectPacket("ws-gone", secret));
      await waitUntil(() => held.calls.length === 1);
      const gone = new Promise((resolve) => ws.once("close", resolve));
      ws.terminate();
      await gone;
      // The server sees its side closed a moment later (loopback); the broker hears of it on the same turn.
      await waitUntil(() => served.upgraded.every((socket) => socket.closed));
      held.open();
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(tb.host.opens("ws-gone"), [], "no agent session for a client that is gone");
      assert.equal(tb.broker.isOnline("ws-gone"), false);
    } finally {
      await tb.close();
      await served.close();
    }
  });
});
