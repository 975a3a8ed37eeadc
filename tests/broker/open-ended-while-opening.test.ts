/**
 * A session that ends while its agent connection is being opened is not an agent refusing it. The case that showed
 * it: in anonymous mode, a device reconnecting while `DELETE /api/devices/:id` waits for its busy agent; its open waits
 * in the mailbox, the destroy fails it (BRIDGE_ERR_AGENT_DESTROYED) and closes the connection. That is the removal going
 * as asked: no `agent refused the connection` warning, no BRIDGE_ERR_OPEN_FAILED. An open that really fails still gets
 * both, a runtime shut down under a broker that still accepts (BRIDGE_ERR_RUNTIME_CLOSED) included.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import pino from "pino";
import type { AgentHost, CloseReason, ConnectionTransport, EventResult, InboundMessage } from "../../agents/host.ts";
import { Agent, type AgentRuntime, type Connection, createRuntime } from "../../agents/index.ts";
import {
  connectAttempt,
  connectDevice,
  endClient,
  RecordingHost,
  type TestBroker,
  startTestBroker,
  waitUntil,
} from "./helpers.ts";

/** Holds the agent in an event until the test lets it go on, as a long reasoning turn or a slow RPC would. */
let busy = false;
let release: () => void = () => {};
class BusyAgent extends Agent {
  override async onMessage(_conn: Connection, _message: InboundMessage): Promise<void> {
    busy = true;
    await new Promise<void>((resolve) => {
      release = resolve;
    });
    busy = false;
  }
}

const OPEN_FAILED = "BRIDGE_ERR_OPEN_FAILED";
const noopTransport: ConnectionTransport = { send() {}, sendProtocol() {}, close() {} };

function refusalWarnings(tb: TestBroker<AgentHost>, device: string): Array<Record<string, unknown>> {
  return tb.logger.lines
    .filter((l) => l.level === "warn" && l.msg === "agent refused the connection" && l.obj.device === device)
    .map((l) => l.obj);
}

describe("an agent destroyed while a session to it opens (anonymous mode, DELETE of a busy agent)", () => {
  let dir: string;
  let runtime: AgentRuntime;
  let tb: TestBroker<AgentHost>;
  let opensAsked = 0;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "broker-ended-opening-"));
    runtime = createRuntime({
      dataDir: path.join(dir, "agents"),
      defaultAgentClass: BusyAgent,
      logger: pino({ level: "silent" }),
    });
    await runtime.start();
    const host: AgentHost = {
      open(agentId, init) {
        opensAsked++;
        return runtime.open(agentId, init);
      },
      deliver: (agentId, connectionId, message) => runtime.deliver(agentId, connectionId, message),
      close: (agentId, connectionId, reason) => runtime.close(agentId, connectionId, reason),
    };
    tb = await startTestBroker({ host, anonymous: true });
  });
  after(async () => {
    await tb.close();
    await runtime.shutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Makes the agent busy through a connection of its own (an operator's WebSocket client, say). */
  async function occupy(id: string): Promise<void> {
    const opened = await runtime.open(id, {
      id: `ws-${id}`,
      kind: "internal",
      codec: "json",
      transport: noopTransport,
    });
    assert.equal(opened.status, "committed");
    const delivered = runtime.deliver(id, `ws-${id}`, { channel: "telemetry", frame: { r: { t: 1 } } });
    assert.equal(delivered.accepted, true);
    await waitUntil(() => busy);
  }

  test("an anonymous device's open that the destroy failed is neither warned nor counted; it then connects to a new agent", async () => {
    await occupy("anon-1");
    // What DELETE /api/devices/anon-1 does, in its order (no record to remove: the device is anonymous).
    tb.broker.endSessions("anon-1", "removed");
    const destroyed = runtime.destroyAgent("anon-1");
    const asked = opensAsked;
    const reconnect = connectAttempt(tb.url, { clientId: "anon-1" });
    // Its open waits in the busy agent's mailbox, behind the event that runs; the destroy comes once that ends.
    await waitUntil(() => opensAsked === asked + 1);
    release();
    assert.equal(await destroyed, true);
    const outcome = await reconnect;
    assert.notEqual(outcome.code, 0, "the destroyed agent's connection did not open");
    await waitUntil(() =>
      tb.logger.lines.some((l) => l.msg === "session ended while it was being opened" && l.obj.device === "anon-1"),
    );
    assert.deepEqual(refusalWarnings(tb, "anon-1"), []);
    assert.equal(tb.broker.stats().limitBreaches[OPEN_FAILED], undefined);

    // The device comes back (its reconnect backoff): a new agent serves it, as docs/api.md says.
    const again = await connectDevice(tb.url, { clientId: "anon-1" });
    try {
      assert.equal(tb.broker.isOnline("anon-1"), true);
    } finally {
      await endClient(again);
    }
  });

  test("a registered device's opening session that the removal ended is neither warned nor counted either", async () => {
    const secret = await tb.registry.add("reg-1", { codec: "json" });
    assert.equal(secret.status, "created");
    await occupy("reg-1");
    const asked = opensAsked;
    const connecting = connectAttempt(tb.url, {
      clientId: "reg-1",
      username: "reg-1",
      password: secret.status === "created" ? secret.secret : "",
    });
    // Verified, and its open waits in the mailbox: a live session the removal ends as `removed`.
    await waitUntil(() => opensAsked === asked + 1);
    tb.registry.remove("reg-1");
    assert.equal(tb.broker.endSessions("reg-1", "removed"), 1);
    const destroyed = runtime.destroyAgent("reg-1");
    release();
    assert.equal(await destroyed, true);
    assert.notEqual((await connecting).code, 0);
    await waitUntil(() =>
      tb.logger.lines.some((l) => l.msg === "session ended while it was being opened" && l.obj.device === "reg-1"),
    );
    assert.deepEqual(refusalWarnings(tb, "reg-1"), []);
    assert.equal(tb.broker.stats().limitBreaches[OPEN_FAILED], undefined);
  });
});

describe("open failures that are not a session's end keep their warning and count", () => {
  test("an agent that fails the open (onConnect threw) gets CONNACK 3, a warning and BRIDGE_ERR_OPEN_FAILED", async () => {
    const tb = await startTestBroker({ anonymous: true });
    try {
      tb.host.openResult = { status: "failed", code: "BRIDGE_ERR_HANDLER_FAILED", message: "onConnect threw" };
      assert.equal((await connectAttempt(tb.url, { clientId: "faulty-1" })).code, 3);
      await waitUntil(() => refusalWarnings(tb, "faulty-1").length === 1);
      assert.deepEqual(refusalWarnings(tb, "faulty-1"), [
        { device: "faulty-1", code: "BRIDGE_ERR_HANDLER_FAILED", count: 1 },
      ]);
      assert.equal(tb.broker.stats().limitBreaches[OPEN_FAILED], 1);
    } finally {
      await tb.close();
    }
  });

  test("a runtime closed under a broker that still accepts (the session did not end) is warned and counted", async () => {
    const tb = await startTestBroker({ anonymous: true });
    try {
      tb.host.openResult = { status: "failed", code: "BRIDGE_ERR_RUNTIME_CLOSED", message: "runtime is shut down" };
      assert.equal((await connectAttempt(tb.url, { clientId: "orphan-1" })).code, 3);
      await waitUntil(() => refusalWarnings(tb, "orphan-1").length === 1);
      assert.equal(tb.broker.stats().limitBreaches[OPEN_FAILED], 1);
    } finally {
      await tb.close();
    }
  });
});

/** A RecordingHost whose closes wait until the test lets them go on (an agent finishing a long event). */
class SlowCloseHost extends RecordingHost {
  gate: Promise<void> | undefined;
  override async close(agentId: string, connectionId: string, reason: CloseReason): Promise<EventResult> {
    const result = await super.close(agentId, connectionId, reason);
    await this.gate;
    return result;
  }
}

test("a takeover that an operator's removal ended while the old session's close ran is not an open failure", async () => {
  const host = new SlowCloseHost();
  const tb = await startTestBroker({ host, anonymous: true });
  try {
    const first = await connectDevice(tb.url, { clientId: "twin-1" });
    let letGo: () => void = () => {};
    host.gate = new Promise<void>((resolve) => {
      letGo = resolve;
    });
    // The second session closes the first (a takeover) and waits for that close; the device is removed meanwhile,
    // which ends the second session before its open reaches the agent.
    const second = connectAttempt(tb.url, { clientId: "twin-1" });
    await waitUntil(() => host.closes("twin-1").length === 1);
    assert.equal(tb.broker.endSessions("twin-1", "removed"), 1, "the opening session (the first one is closing)");
    letGo();
    assert.notEqual((await second).code, 0);
    await waitUntil(() =>
      tb.logger.lines.some((l) => l.msg === "session ended while it was being opened" && l.obj.device === "twin-1"),
    );
    assert.deepEqual(refusalWarnings(tb, "twin-1"), []);
    assert.equal(tb.broker.stats().limitBreaches[OPEN_FAILED], undefined);
    assert.equal(host.opens("twin-1").length, 1, "the second session never reached the agent");
    await endClient(first, true);
  } finally {
    await tb.close();
  }
});
