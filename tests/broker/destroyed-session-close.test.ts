/**
 * A destroy that is not an operator's `DELETE` (the agent's own `this.destroy()`, the runtime API's `destroyAgent`)
 * ends the agent's MQTT sessions as `destroyed`: the agent is gone, nothing failed. Before, the runtime's
 * `transport.close("agent destroyed")` was counted as `error` in the broker's counters (and so in
 * `bridge_connections_closed_total`), as a session the broker had to cut. A `DELETE` still ends them as `removed` first.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { MqttClient } from "mqtt";
import type { InboundMessage } from "../../agents/host.ts";
import { Agent, type Connection } from "../../agents/index.ts";
import { closed, connectDevice, endClient, publish, waitUntil } from "./helpers.ts";
import { type RuntimeBroker, startRuntimeBroker } from "./runtime-broker.ts";

/** Destroys itself at its device's first telemetry message. */
class SelfDestructing extends Agent {
  override onMessage(_conn: Connection, message: InboundMessage): void {
    if (message.channel === "telemetry") void this.destroy();
  }
}

let rb: RuntimeBroker;
const clients: MqttClient[] = [];

before(async () => {
  rb = await startRuntimeBroker({ agentClass: SelfDestructing });
});

after(async () => {
  for (const c of clients) await endClient(c, true).catch(() => {});
  await rb.close();
});

async function connect(id: string): Promise<MqttClient> {
  const secret = await rb.addDevice(id, "json");
  const client = await connectDevice(rb.url, { clientId: id, username: id, password: secret });
  clients.push(client);
  return client;
}

function closedCount(reason: "destroyed" | "error"): number {
  return rb.broker.stats().connectionsClosed[reason] ?? 0;
}

test("an agent that destroys itself ends its device's session as destroyed, not error", async () => {
  const client = await connect("self-1");
  const gone = closed(client);
  await publish(client, "devices/self-1/up/telemetry", JSON.stringify({ r: { t: 1 } }), 0);
  await gone;
  await waitUntil(() => closedCount("destroyed") === 1);
  assert.equal(closedCount("error"), 0);
});

test("the runtime API's destroyAgent ends the device's session as destroyed, not error", async () => {
  const client = await connect("api-1");
  const gone = closed(client);
  assert.equal(await rb.runtime.destroyAgent("api-1"), true);
  await gone;
  await waitUntil(() => closedCount("destroyed") === 2);
  assert.equal(closedCount("error"), 0);
});
