/**
 * A WebSocket agent-protocol client whose agent is destroyed (its own `destroy()`, `runtime.destroyAgent`, a `DELETE`
 * of its device) gets an answer for every message it sent before the close frame (1000, "agent destroyed"): the rpc
 * that was waiting in the agent's mailbox and those queued on the socket fail with BRIDGE_ERR_AGENT_DESTROYED. Before,
 * the socket closed first and their failures were dropped, so a plain client waited for answers that never came.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import WebSocket from "ws";
import { Agent } from "../../agents/index.ts";
import { servedAgentSocketRuntime, socketObserver } from "./agent-socket-server.ts";

const TOKEN = "ws-destroyed-token-0123456789";

/** `hold` waits until the test lets it go on, then destroys the agent; `ping` answers at once. */
let entered = false;
let release: () => void = () => {};
class Ephemeral extends Agent {
  static override callable = ["hold", "ping"];
  async hold(): Promise<string> {
    entered = true;
    await new Promise<void>((resolve) => {
      release = resolve;
    });
    void this.destroy();
    return "held";
  }
  ping(): string {
    return "pong";
  }
}

interface Seen {
  messages: Array<Record<string, unknown>>;
  close: Promise<{ code: number; reason: string; before: number }>;
}

/** Connects and records every message and the close frame (with how many messages came before it). */
async function connect(url: string): Promise<{ ws: WebSocket; seen: Seen }> {
  const ws = new WebSocket(url);
  const messages: Array<Record<string, unknown>> = [];
  ws.on("message", (data) => messages.push(JSON.parse(String(data)) as Record<string, unknown>));
  const close = new Promise<{ code: number; reason: string; before: number }>((resolve) =>
    ws.once("close", (code, reason) => resolve({ code, reason: String(reason), before: messages.length })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  return { ws, seen: { messages, close } };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.ok(check(), "the condition was never met");
}

/** Rpcs the socket server has read, of every client. */
let rpcsIn = 0;
const observer = socketObserver({
  messageIn(channel) {
    if (channel === "rpc") rpcsIn++;
  },
});

describe("a WebSocket client whose agent is destroyed", () => {
  const sockets = servedAgentSocketRuntime(Ephemeral, TOKEN, "ws-destroyed", observer);

  const destroyed = { success: false, code: "BRIDGE_ERR_AGENT_DESTROYED", error: "agent destroyed", done: true };

  test("by its own destroy() gets the answers of its waiting rpcs, then the close frame 1000 'agent destroyed'", async () => {
    const { ws, seen } = await connect(`${sockets.base}/self-1?token=${TOKEN}`);
    const other = await connect(`${sockets.base}/self-1?token=${TOKEN}`);
    await until(() => other.seen.messages.some((m) => m.type === "cf_agent_state"));
    ws.send(JSON.stringify({ type: "rpc", id: "1", method: "hold", args: [] }));
    await until(() => entered);
    // The second socket's rpc waits in the agent's mailbox behind `hold`; this socket's next ones on the socket.
    other.ws.send(JSON.stringify({ type: "rpc", id: "o1", method: "ping", args: [] }));
    ws.send(JSON.stringify({ type: "rpc", id: "2", method: "ping", args: [] }));
    ws.send(JSON.stringify({ type: "rpc", id: "3", method: "ping", args: [] }));
    // The server has read all four rpcs, and the second socket's waits in the mailbox, before `hold` goes on.
    await until(() => rpcsIn === 4 && sockets.runtime.stats().mailboxDepth === 1);
    release();

    const closed = await seen.close;
    assert.deepEqual(closed, { code: 1000, reason: "agent destroyed", before: seen.messages.length });
    const rpcs = seen.messages.filter((m) => m.type === "rpc");
    assert.deepEqual(rpcs, [
      { type: "rpc", id: "1", success: true, result: "held", done: true },
      { type: "rpc", id: "2", ...destroyed },
      { type: "rpc", id: "3", ...destroyed },
    ]);
    const otherClosed = await other.seen.close;
    assert.equal(otherClosed.code, 1000);
    assert.deepEqual(
      other.seen.messages.filter((m) => m.type === "rpc"),
      [{ type: "rpc", id: "o1", ...destroyed }],
    );
  });

  test("by the runtime API's destroyAgent is closed the same way", async () => {
    const { seen } = await connect(`${sockets.base}/api-1?token=${TOKEN}`);
    assert.equal(await sockets.runtime.destroyAgent("api-1"), true);
    const closed = await seen.close;
    assert.equal(closed.code, 1000);
    assert.equal(closed.reason, "agent destroyed");
  });
});
