/**
 * A device connecting to an agent whose onStart keeps timing out (agents/start-backoff.ts): its CONNECT is refused
 * with CONNACK 3 (server unavailable), the answer MQTT 3.1.1 gives for "the service is not available, try again",
 * both when the open waited through the two timeouts and when it arrives during the backoff; once onStart settles
 * again, the device's next CONNECT is accepted and its QoS 1 messages are acknowledged as usual.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import type { MqttClient } from "mqtt";
import pino from "pino";
import { Agent, type AgentRuntime, createRuntime } from "../../agents/index.ts";
import { START_RETRY_FIRST_MS } from "../../agents/start-backoff.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { connectAttempt, endClient, publish, type TestBroker, startTestBroker, waitUntil } from "./helpers.ts";

const TIMEOUT_MS = 1_000;
const stuck = { hanging: true, starts: 0 };

class Stuck extends Agent {
  override onStart(): void | Promise<void> {
    stuck.starts++;
    if (stuck.hanging) return new Promise(() => {});
  }
}

describe("a device whose agent's onStart keeps timing out", () => {
  let dir: string;
  let clock: ManualClock;
  let runtime: AgentRuntime;
  let tb: TestBroker<AgentRuntime>;
  const clients: MqttClient[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "start-backoff-connect-"));
    clock = new ManualClock();
    runtime = createRuntime({
      dataDir: path.join(dir, "agents"),
      defaultAgentClass: Stuck,
      clock,
      callbackTimeoutMs: TIMEOUT_MS,
      logger: pino({ level: "silent" }),
    });
    await runtime.start();
    tb = await startTestBroker({ host: runtime });
  });

  after(async () => {
    for (const c of clients) await endClient(c, true).catch(() => {});
    await tb.close();
    stuck.hanging = false;
    await runtime.shutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("is refused with CONNACK 3 during the backoff and connects cleanly once onStart settles", async () => {
    const secret = await tb.addDevice("dev-stuck", "json");
    const options = { clientId: "dev-stuck", username: "dev-stuck", password: secret };

    // The open waits through the two time limits of the runtime's clock, then fails.
    const first = connectAttempt(tb.url, options);
    await waitUntil(() => stuck.starts === 1);
    await clock.advance(TIMEOUT_MS);
    await waitUntil(() => stuck.starts === 2);
    await clock.advance(TIMEOUT_MS);
    assert.equal((await first).code, 3, "server unavailable");

    // During the backoff: refused at once, with no start tried for it.
    assert.equal((await connectAttempt(tb.url, options)).code, 3);
    assert.equal(stuck.starts, 2);

    // onStart settles at the next try (the backoff's end): the agent is started again.
    stuck.hanging = false;
    await clock.advance(START_RETRY_FIRST_MS);
    await waitUntil(() => stuck.starts === 3);

    const again = await connectAttempt(tb.url, options);
    assert.equal(again.code, 0, "accepted");
    const client = again.client as MqttClient;
    clients.push(client);
    await publish(client, "devices/dev-stuck/up/telemetry", JSON.stringify({ r: { t: 1 } }), 1);
    assert.ok(client.connected, "the session is up after its QoS 1 message was acknowledged");
  });
});
