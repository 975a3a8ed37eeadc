/**
 * An operator's `DELETE /api/devices/:id` ends the device's session (`endSessions(id, "removed")`) and then destroys
 * its agent. When the agent is in the middle of an event, the session's close waits in its mailbox and is failed by
 * the destroy (BRIDGE_ERR_AGENT_DESTROYED): that is the removal going as asked, not an `onClose` that failed, so the
 * broker does not warn about it, nor about a device that disconnected on its own in that moment. A close that really
 * failed still gets its warning, removed or not.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import type { MqttClient } from "mqtt";
import pino from "pino";
import type { AgentHost, EventResult, InboundMessage } from "../../agents/host.ts";
import { Agent, type AgentRuntime, type Connection, createRuntime } from "../../agents/index.ts";
import { closed, connectDevice, endClient, publish, type TestBroker, startTestBroker, waitUntil } from "./helpers.ts";

/** Holds the agent in its event (mid-batch) until the test lets it go on. */
let entered = false;
let release: () => void = () => {};
class BusyAgent extends Agent {
  override async onMessage(_conn: Connection, _message: InboundMessage): Promise<void> {
    entered = true;
    await new Promise<void>((resolve) => {
      release = resolve;
    });
  }
}

let dir: string;
let runtime: AgentRuntime;
let tb: TestBroker<AgentHost>;
let closeCalls = 0;
const closeResults: EventResult[] = [];
/** Devices whose close the host answers with a storage failure, as a failing agent database would. */
const failingCloses = new Set<string>();
const clients: MqttClient[] = [];

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "removed-close-"));
  runtime = createRuntime({
    dataDir: path.join(dir, "agents"),
    defaultAgentClass: BusyAgent,
    logger: pino({ level: "silent" }),
  });
  await runtime.start();
  const host: AgentHost = {
    open: (agentId, init) => runtime.open(agentId, init),
    deliver: (agentId, connectionId, message) => runtime.deliver(agentId, connectionId, message),
    async close(agentId, connectionId, reason) {
      closeCalls++;
      const result: EventResult = failingCloses.has(agentId)
        ? { status: "failed", code: "BRIDGE_ERR_STORAGE", message: "disk I/O error" }
        : await runtime.close(agentId, connectionId, reason);
      closeResults.push(result);
      return result;
    },
  };
  tb = await startTestBroker({ host });
});

after(async () => {
  for (const c of clients) await endClient(c, true).catch(() => {});
  await tb.close();
  await runtime.shutdown();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function connect(id: string): Promise<MqttClient> {
  const secret = await tb.addDevice(id, "json");
  const client = await connectDevice(tb.url, { clientId: id, username: id, password: secret });
  clients.push(client);
  return client;
}

function onCloseWarnings(device: string): Array<Record<string, unknown>> {
  return tb.logger.lines
    .filter((l) => l.level === "warn" && l.msg === "agent onClose failed" && l.obj.device === device)
    .map((l) => l.obj);
}

test("a device removed while its agent is mid-event logs no onClose warning for the close its destroy failed", async () => {
  const client = await connect("busy-1");
  const gone = closed(client);
  await publish(client, "devices/busy-1/up/telemetry", JSON.stringify({ r: { t: 1 } }), 0);
  await waitUntil(() => entered);

  // What DELETE /api/devices/:id does, in its order: the sessions end as removed, then the agent is destroyed.
  assert.equal(tb.broker.endSessions("busy-1", "removed"), 1);
  const destroyed = runtime.destroyAgent("busy-1");
  await gone;
  // The session's close reached the agent and waits behind the event that runs.
  await waitUntil(() => closeCalls === 1);
  release();
  assert.equal(await destroyed, true);
  await waitUntil(() => tb.broker.stats().connectionsClosed.removed === 1);

  assert.deepEqual(
    closeResults.map((r) => r.status === "failed" && r.code),
    ["BRIDGE_ERR_AGENT_DESTROYED"],
    "the close was failed by the destroy (the case under test)",
  );
  assert.deepEqual(onCloseWarnings("busy-1"), []);
});

test("a device that disconnects while its agent is destroyed mid-event logs no onClose warning either", async () => {
  closeResults.length = 0;
  closeCalls = 0;
  entered = false;
  const client = await connect("leaving-1");
  await publish(client, "devices/leaving-1/up/telemetry", JSON.stringify({ r: { t: 1 } }), 0);
  await waitUntil(() => entered);

  // The device leaves on its own (not a removal); its close waits behind the event that runs, then the agent goes.
  await endClient(client);
  await waitUntil(() => closeCalls === 1);
  const destroyed = runtime.destroyAgent("leaving-1");
  release();
  assert.equal(await destroyed, true);
  await waitUntil(() => closeResults.length === 1);

  assert.deepEqual(
    closeResults.map((r) => r.status === "failed" && r.code),
    ["BRIDGE_ERR_AGENT_DESTROYED"],
  );
  // Let the broker read the close's result before looking for its warning.
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(onCloseWarnings("leaving-1"), []);
});

test("a removed device's close that fails for another reason is still a warning", async () => {
  closeResults.length = 0;
  const client = await connect("broken-1");
  const gone = closed(client);
  failingCloses.add("broken-1");
  assert.equal(tb.broker.endSessions("broken-1", "removed"), 1);
  await gone;
  await waitUntil(() => tb.broker.stats().connectionsClosed.removed === 2);
  assert.deepEqual(onCloseWarnings("broken-1"), [{ device: "broken-1", code: "BRIDGE_ERR_STORAGE" }]);
});
