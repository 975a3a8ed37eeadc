/**
 * A WebSocket agent client that stops reading: what the bridge buffers for it is bounded. Driven with a real ws client
 * whose socket is paused, so the server's writes back up through both kernels' buffers into ws's `bufferedAmount`.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import WebSocket from "ws";
import { createAgentSocketServer } from "../../app/ws/index.ts";
import { FakeHost } from "./ws-fake-host.ts";
import { type ServedAgentSockets, serveAgentSockets, socketObserver } from "./agent-socket-server.ts";

const TOKEN = "test-token-0123456789abcdef";
const MAX_BUFFERED = 256 * 1024;
/** One state broadcast of about 32 KiB of JSON. */
const BIG_STATE = { blob: "x".repeat(32 * 1024) };
/** Far more than loopback's kernel buffers hold; the test fails rather than hangs if the bound never applies. */
const MAX_SENT_BYTES = 256 * 1024 * 1024;

describe("WebSocket agent endpoint: a client that stops reading", () => {
  let served: ServedAgentSockets;
  let host: FakeHost;
  let base: string;
  const breaches: string[] = [];
  const warnings: Array<Record<string, unknown>> = [];
  const clients: WebSocket[] = [];
  let ids = 0;

  before(async () => {
    host = new FakeHost();
    const observer = socketObserver({
      limitBreach(code) {
        breaches.push(code);
      },
    });
    served = await serveAgentSockets(
      createAgentSocketServer({
        host,
        apiToken: TOKEN,
        newConnectionId: () => `c${++ids}`,
        maxBufferedBytes: MAX_BUFFERED,
        observer,
        logger: { debug() {}, warn: (obj) => warnings.push(obj as Record<string, unknown>) },
      }),
    );
    base = served.url;
  });

  after(async () => {
    for (const ws of clients) ws.terminate();
    await served.close();
  });

  async function connect(agentId: string): Promise<{ ws: WebSocket; connectionId: string }> {
    const before = new Set(host.connections.keys());
    const ws = new WebSocket(`${base}/agents/${agentId}?token=${TOKEN}`);
    clients.push(ws);
    // The identity comes once the agent connection is open, so the connection is known to the host by then.
    await new Promise<void>((resolve, reject) => {
      ws.once("message", () => resolve());
      ws.once("error", reject);
    });
    const connectionId = [...host.connections.keys()].find((id) => !before.has(id));
    assert.ok(connectionId !== undefined);
    return { ws, connectionId };
  }

  test("is closed with 1013 and a counted reason once too much waits for it; other clients and the agent go on", async () => {
    const slow = await connect("dev-1");
    const other = await connect("dev-1");
    let otherReceived = 0;
    other.ws.on("message", () => otherReceived++);
    const slowClosed = new Promise<{ code: number; reason: string }>((resolve) =>
      slow.ws.once("close", (code, reason) => resolve({ code, reason: String(reason) })),
    );
    // The client stops reading: nothing it is sent leaves the bridge's process once the kernels' buffers are full.
    slow.ws.pause();

    let sent = 0;
    while (breaches.length === 0 && sent < MAX_SENT_BYTES) {
      // The agent broadcasts its state to every protocol connection, as setState does.
      for (const c of host.connections.values()) c.transport.sendProtocol({ type: "state", state: BIG_STATE });
      sent += 32 * 1024;
      // Let the sockets write (and the other client read) between broadcasts.
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(breaches, ["BRIDGE_ERR_WS_SLOW_CONSUMER"], `closed after ${sent} bytes were broadcast`);
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]?.maxBufferedBytes, MAX_BUFFERED);
    // Held for it at most: the bound plus the one message that went past it.
    const held = Number(warnings[0]?.bufferedBytes);
    assert.ok(held >= MAX_BUFFERED && held < MAX_BUFFERED + 64 * 1024, `held ${held} bytes`);
    assert.equal(warnings[0]?.connectionId, slow.connectionId);

    // Nothing more is buffered for it once it is closing, and it is counted once.
    for (let i = 0; i < 64; i++) {
      for (const c of host.connections.values()) c.transport.sendProtocol({ type: "state", state: BIG_STATE });
    }
    assert.deepEqual(breaches, ["BRIDGE_ERR_WS_SLOW_CONSUMER"]);

    // The other client still talks to the agent.
    const seenBefore = otherReceived;
    other.ws.send(JSON.stringify({ type: "rpc", id: "r1", method: "add", args: [2, 3] }));
    const reply = await new Promise<Record<string, unknown>>((resolve) => {
      const onMessage = (data: WebSocket.RawData) => {
        const m = JSON.parse(String(data)) as Record<string, unknown>;
        if (m.id === "r1") {
          other.ws.off("message", onMessage);
          resolve(m);
        }
      };
      other.ws.on("message", onMessage);
    });
    assert.equal(reply.result, 5);
    assert.ok(otherReceived > seenBefore);

    // Reading again, the slow client gets what was buffered, then the close frame that says why.
    slow.ws.resume();
    const { code, reason } = await slowClosed;
    assert.equal(code, 1013);
    assert.match(reason, /not reading/);
    // The agent sees the close of the slow connection only.
    await waitFor(() => !host.connections.has(slow.connectionId));
    assert.ok(host.connections.has(other.connectionId));
    other.ws.close();
  });

  test("one message larger than maxBufferedBytes to a client that reads, and the messages right after it, are delivered", async () => {
    const reader = await connect("dev-2");
    const breachesBefore = breaches.length;
    let closedWith: number | undefined;
    reader.ws.on("close", (code) => {
      closedWith = code;
    });
    const received: string[] = [];
    reader.ws.on("message", (data) => received.push(String(data)));
    const conn = host.connections.get(reader.connectionId);
    assert.ok(conn !== undefined);
    // Far more than loopback's kernel buffers take at once: most of it still waits in ws when the next ones are sent,
    // as a large state broadcast is still being written when the reply or the chunk after it goes out.
    conn.transport.sendProtocol({ type: "state", state: { blob: "x".repeat(64 * MAX_BUFFERED) } });
    for (let i = 0; i < 3; i++) conn.transport.sendProtocol({ type: "state", state: { after: i } });
    const last = '{"type":"cf_agent_state","state":{"after":2}}';
    await waitFor(() => received.includes(last) || closedWith !== undefined);
    assert.equal(closedWith, undefined, "the client that keeps up was closed");
    assert.equal(breaches.length, breachesBefore);
    // The big one, then the three after it, in order (the open's own state may come first).
    const ours = received.filter((m) => m.includes('"blob"') || m.includes('"after"'));
    assert.equal(ours.length, 4);
    assert.ok(ours[0]?.includes('"blob"'));
    assert.equal(ours[3], last);
    reader.ws.close();
  });

  test("maxBufferedBytes is validated", () => {
    assert.throws(() => createAgentSocketServer({ host, apiToken: TOKEN, maxBufferedBytes: 0 }), /maxBufferedBytes/);
    assert.throws(() => createAgentSocketServer({ host, apiToken: TOKEN, maxBufferedBytes: 1.5 }), /maxBufferedBytes/);
  });
});

async function waitFor(predicate: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !predicate(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(predicate(), "condition not reached");
}
