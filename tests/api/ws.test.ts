import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import WebSocket from "ws";
import { createAgentSocketServer } from "../../app/ws/index.ts";
import { closeReason } from "../../app/ws/session.ts";
import { FakeHost } from "./ws-fake-host.ts";
import { type ServedAgentSockets, serveAgentSockets } from "./agent-socket-server.ts";

const TOKEN = "test-token-0123456789abcdef";

/** Collects JSON messages of a socket and lets a test wait for the next one matching a predicate. */
class Inbox {
  readonly messages: Array<Record<string, unknown>> = [];
  #waiters: Array<{ pred: (m: Record<string, unknown>) => boolean; resolve: (m: Record<string, unknown>) => void }> =
    [];
  constructor(ws: WebSocket) {
    ws.on("message", (data) => {
      const m = JSON.parse(String(data)) as Record<string, unknown>;
      this.messages.push(m);
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.pred(m)) return true;
        w.resolve(m);
        return false;
      });
    });
  }
  next(pred: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    const found = this.messages.find(pred);
    if (found !== undefined) {
      this.messages.splice(this.messages.indexOf(found), 1);
      return Promise.resolve(found);
    }
    return new Promise((resolve) => {
      this.#waiters.push({
        pred,
        resolve: (m) => {
          this.messages.splice(this.messages.indexOf(m), 1);
          resolve(m);
        },
      });
    });
  }
}

describe("WebSocket agent endpoint", () => {
  let served: ServedAgentSockets;
  let host: FakeHost;
  let base: string;
  const open: WebSocket[] = [];
  let ids = 0;

  before(async () => {
    host = new FakeHost();
    served = await serveAgentSockets(
      createAgentSocketServer({
        host,
        apiToken: TOKEN,
        agentExists: (id) => id !== "ghost",
        newConnectionId: () => `c${++ids}`,
        maxProtocolErrors: 3,
      }),
    );
    base = served.url;
  });

  after(async () => {
    for (const ws of open) ws.terminate();
    await served.close();
  });

  async function connect(path: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket; inbox: Inbox }> {
    const ws = new WebSocket(`${base}${path}`, { headers });
    open.push(ws);
    const inbox = new Inbox(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    return { ws, inbox };
  }

  function refusedStatus(path: string, headers: Record<string, string> = {}): Promise<number> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${base}${path}`, { headers });
      ws.once("unexpected-response", (_req, res) => {
        resolve(res.statusCode ?? 0);
        ws.terminate();
      });
      ws.once("open", () => reject(new Error("upgrade was accepted")));
      ws.once("error", () => {});
    });
  }

  test("an upgrade without a token, with a wrong token, for a bad id or an unknown agent is refused with a status", async () => {
    assert.equal(await refusedStatus("/agents/dev-1"), 401);
    assert.equal(await refusedStatus("/agents/dev-1?token=wrong"), 401);
    assert.equal(await refusedStatus("/agents/dev-1", { authorization: "Bearer nope" }), 401);
    assert.equal(await refusedStatus(`/agents/bad%20id?token=${TOKEN}`), 400);
    assert.equal(await refusedStatus(`/agents/%E0%A4%A?token=${TOKEN}`), 400);
    assert.equal(await refusedStatus(`/agents/ghost?token=${TOKEN}`), 404);
  });

  test("a client gets the agent identity and state on connect, with the token in a header or the query", async () => {
    const a = await connect("/agents/dev-1", { authorization: `Bearer ${TOKEN}` });
    const identity = await a.inbox.next((m) => m.type === "cf_agent_identity");
    assert.deepEqual(identity, {
      type: "cf_agent_identity",
      name: "FakeAgent",
      agent: "dev-1",
      protocolVersion: 1,
      serverTime: 42,
    });
    const state = await a.inbox.next((m) => m.type === "cf_agent_state");
    assert.deepEqual(state.state, host.state);
    const b = await connect(`/agents/dev-1?token=${TOKEN}`);
    await b.inbox.next((m) => m.type === "cf_agent_identity");
    a.ws.close();
    b.ws.close();
  });

  test("rpc calls reach the agent and answer with success or the agent's error", async () => {
    const { ws, inbox } = await connect(`/agents/dev-2?token=${TOKEN}`);
    ws.send(JSON.stringify({ type: "rpc", id: "r1", method: "add", args: [2, 3] }));
    assert.deepEqual(await inbox.next((m) => m.id === "r1"), {
      type: "rpc",
      id: "r1",
      success: true,
      result: 5,
      done: true,
    });
    ws.send(JSON.stringify({ type: "rpc", id: "r2", method: "missing", args: [] }));
    const r2 = await inbox.next((m) => m.id === "r2");
    assert.equal(r2.success, false);
    assert.match(String(r2.error), /missing/);
    ws.send(JSON.stringify({ type: "rpc", id: "r3", method: "explode" }));
    const r3 = await inbox.next((m) => m.id === "r3");
    assert.equal(r3.success, false);
    assert.equal(r3.code, "BRIDGE_ERR_AGENT_HANDLER");
    ws.close();
  });

  test("a state change from one client is synced to the others, and a readonly client may not change state", async () => {
    const writer = await connect(`/agents/dev-3?token=${TOKEN}`);
    const viewer = await connect(`/agents/dev-3?token=${TOKEN}&readonly=1`);
    await viewer.inbox.next((m) => m.type === "cf_agent_state");
    writer.ws.send(JSON.stringify({ type: "cf_agent_state", state: { count: 7 } }));
    const synced = await viewer.inbox.next((m) => m.type === "cf_agent_state");
    assert.deepEqual(synced.state, { count: 7 });
    viewer.ws.send(JSON.stringify({ type: "cf_agent_state", state: { count: 99 } }));
    const refused = await viewer.inbox.next((m) => m.type === "cf_agent_state_error");
    assert.equal(refused.code, "BRIDGE_ERR_WS_READONLY");
    assert.deepEqual(host.state, { count: 7 });
    assert.ok(host.events.includes("open:dev-3:ro"));
    writer.ws.close();
    viewer.ws.close();
  });

  test("malformed messages get error frames and repeated abuse closes the socket with 1008", async () => {
    const { ws, inbox } = await connect(`/agents/dev-4?token=${TOKEN}`);
    const closed = new Promise<number>((r) => ws.once("close", (code) => r(code)));
    ws.send("{not json");
    assert.equal((await inbox.next((m) => m.type === "error")).code, "BRIDGE_ERR_WS_BAD_JSON");
    ws.send(JSON.stringify({ type: "rpc", id: "x", method: "add", args: "nope" }));
    const bad = await inbox.next((m) => m.type === "error");
    assert.equal(bad.code, "BRIDGE_ERR_WS_BAD_MESSAGE");
    assert.equal(bad.id, "x");
    ws.send(`{"type":"rpc","id":"d","method":"add","args":[${"[".repeat(5000)}${"]".repeat(5000)}]}`);
    assert.match(String((await inbox.next((m) => m.type === "error")).message), /nest deeper/);
    assert.equal(await closed, 1008);
  });

  test("an rpc refused for values nested too deep is answered with its id", async () => {
    const { ws, inbox } = await connect(`/agents/dev-8?token=${TOKEN}`);
    ws.send(`{"type":"rpc","id":"deep","method":"add","args":[${"[".repeat(40)}${"]".repeat(40)}]}`);
    const refused = await inbox.next((m) => m.type === "error");
    assert.equal(refused.code, "BRIDGE_ERR_WS_BAD_MESSAGE");
    assert.match(String(refused.message), /nest deeper/);
    assert.equal(refused.id, "deep");
    ws.close();
  });

  test("messages that arrive after the socket was closed for protocol errors never reach the agent", async () => {
    const { ws, inbox } = await connect(`/agents/dev-7?token=${TOKEN}`);
    await inbox.next((m) => m.type === "cf_agent_state");
    const delivered = host.events.filter((e) => e.startsWith("deliver:")).length;
    const closed = new Promise<number>((r) => ws.once("close", (code) => r(code)));
    // Sent together, so the valid ones arrive after the third error closed the socket and before the client knew.
    for (let i = 0; i < 3; i++) ws.send("{not json");
    ws.send(JSON.stringify({ type: "rpc", id: "late", method: "add", args: [1, 2] }));
    ws.send(JSON.stringify({ type: "cf_agent_state", state: { late: true } }));
    assert.equal(await closed, 1008);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(host.events.filter((e) => e.startsWith("deliver:")).length, delivered);
    assert.notDeepEqual(host.state, { late: true });
  });

  test("messages wait out a full mailbox and are delivered in order", async () => {
    const { ws, inbox } = await connect(`/agents/dev-5?token=${TOKEN}`);
    await inbox.next((m) => m.type === "cf_agent_state");
    host.fill();
    ws.send(JSON.stringify({ type: "rpc", id: "q1", method: "add", args: [1, 1] }));
    ws.send(JSON.stringify({ type: "rpc", id: "q2", method: "add", args: [2, 2] }));
    await new Promise((r) => setImmediate(r));
    assert.equal(inbox.messages.filter((m) => m.type === "rpc").length, 0);
    host.release();
    const q1 = await inbox.next((m) => m.id === "q1");
    const q2 = await inbox.next((m) => m.id === "q2");
    assert.deepEqual([q1.result, q2.result], [2, 4]);
    ws.close();
  });

  test("options are validated and sockets beyond the limit are refused with 503", async () => {
    assert.throws(() => createAgentSocketServer({ host, apiToken: TOKEN, maxSockets: 0 }), /maxSockets/);
    assert.throws(() => createAgentSocketServer({ host, apiToken: "" }), /apiToken/);
    const small = await serveAgentSockets(createAgentSocketServer({ host, apiToken: TOKEN, maxSockets: 1 }));
    const url = `${small.url}/agents/lim-1?token=${TOKEN}`;
    const first = new WebSocket(url);
    await new Promise((r) => first.once("open", r));
    const status = await new Promise<number>((resolve) => {
      const second = new WebSocket(url);
      second.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      second.once("error", () => {});
    });
    assert.equal(status, 503);
    first.close();
    await small.close();
  });

  test("the agent is told when a client disconnects", async () => {
    const { ws, inbox } = await connect(`/agents/dev-6?token=${TOKEN}`);
    await inbox.next((m) => m.type === "cf_agent_identity");
    assert.ok(!host.closed.includes("dev-6"));
    ws.close();
    for (let i = 0; i < 200 && !host.closed.includes("dev-6"); i++) await new Promise((r) => setTimeout(r, 5));
    assert.ok(host.closed.includes("dev-6"));
  });
});

test("a close reason is cut to 123 bytes of UTF-8 on a character boundary", () => {
  assert.equal(closeReason("short"), "short");
  const cut = closeReason("é".repeat(100));
  assert.ok(Buffer.byteLength(cut) <= 123);
  assert.equal(cut, "é".repeat(61));
});
