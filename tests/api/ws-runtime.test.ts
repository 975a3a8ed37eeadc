import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Agent } from "../../agents/index.ts";
import type { Connection } from "../../agents/types.ts";
import { BridgeError } from "../../errors/index.ts";
import { connectByType, servedAgentSocketRuntime } from "./agent-socket-server.ts";

const TOKEN = "ws-runtime-token-0123456789";

type CounterState = { n: number };

/** A small agent with a callable method and a state rule, to exercise the protocol against the real runtime. */
class Counter extends Agent<CounterState> {
  static override callable = ["add", "fail"];
  override initialState: CounterState = { n: 0 };
  add(by: unknown): number {
    this.setState({ n: this.state.n + Number(by) });
    return this.state.n;
  }
  fail(): never {
    throw new BridgeError("BRIDGE_ERR_COUNTER_BROKEN", "counter is broken");
  }
  /** Reads only: runtime.call reaches every public method. */
  peek(): number {
    return this.state.n;
  }
  /** Not callable: a client must not reach it. */
  reset(): void {
    this.setState({ n: 0 });
  }
  override validateStateChange(next: CounterState, _source: Connection | null): void {
    if (typeof next?.n !== "number" || next.n < 0) throw new BridgeError("BRIDGE_ERR_STATE_INVALID", "n must be >= 0");
  }
}

describe("WebSocket agent protocol against the real runtime", () => {
  const sockets = servedAgentSocketRuntime(Counter, TOKEN, "ws-runtime");

  test("identity and state arrive on connect, rpc changes state, and other clients are synced", async () => {
    const a = await connectByType(`${sockets.base}/counter-1?token=${TOKEN}`);
    const b = await connectByType(`${sockets.base}/counter-1?token=${TOKEN}&readonly=1`);
    sockets.opened.push(a.ws, b.ws);
    const identity = await a.next("cf_agent_identity");
    assert.equal(identity.name, "Counter");
    assert.equal(identity.agent, "counter-1");
    assert.deepEqual((await a.next("cf_agent_state")).state, { n: 0 });
    assert.deepEqual((await b.next("cf_agent_state")).state, { n: 0 });

    a.ws.send(JSON.stringify({ type: "rpc", id: "1", method: "add", args: [5] }));
    assert.deepEqual(await a.next("rpc"), { type: "rpc", id: "1", success: true, result: 5, done: true });
    assert.deepEqual((await b.next("cf_agent_state")).state, { n: 5 });

    a.ws.send(JSON.stringify({ type: "cf_agent_state", state: { n: 9 } }));
    assert.deepEqual((await b.next("cf_agent_state")).state, { n: 9 });
  });

  test("a readonly client cannot set state, and a state the agent rejects comes back as cf_agent_state_error", async () => {
    const a = await connectByType(`${sockets.base}/counter-2?token=${TOKEN}`);
    const viewer = await connectByType(`${sockets.base}/counter-2?token=${TOKEN}&readonly=1`);
    sockets.opened.push(a.ws, viewer.ws);
    await viewer.next("cf_agent_state");
    viewer.ws.send(JSON.stringify({ type: "cf_agent_state", state: { n: 100 } }));
    assert.equal((await viewer.next("cf_agent_state_error")).code, "BRIDGE_ERR_WS_READONLY");
    a.ws.send(JSON.stringify({ type: "cf_agent_state", state: { n: -1 } }));
    const refused = await a.next("cf_agent_state_error");
    assert.equal(refused.code, "BRIDGE_ERR_STATE_INVALID");
    assert.match(String(refused.error), /n must be >= 0/);
    const result = await sockets.runtime.call("counter-2", "add", [0]);
    assert.deepEqual(result, { ok: true, value: 0 });
  });

  test("a readonly client's rpc to a method that calls setState fails with BRIDGE_ERR_READONLY_CONNECTION and changes nothing", async () => {
    const a = await connectByType(`${sockets.base}/counter-4?token=${TOKEN}`);
    const viewer = await connectByType(`${sockets.base}/counter-4?token=${TOKEN}&readonly=1`);
    sockets.opened.push(a.ws, viewer.ws);
    await viewer.next("cf_agent_state");
    await a.next("cf_agent_state");
    viewer.ws.send(JSON.stringify({ type: "rpc", id: "v1", method: "add", args: [7] }));
    const refused = await viewer.next("rpc");
    assert.equal(refused.success, false);
    assert.equal(refused.code, "BRIDGE_ERR_READONLY_CONNECTION");
    assert.deepEqual(await sockets.runtime.call("counter-4", "peek", []), { ok: true, value: 0 });
    // The same method from the read-write client still works, and the viewer is synced with it.
    a.ws.send(JSON.stringify({ type: "rpc", id: "a1", method: "add", args: [2] }));
    assert.deepEqual(await a.next("rpc"), { type: "rpc", id: "a1", success: true, result: 2, done: true });
    assert.deepEqual((await viewer.next("cf_agent_state")).state, { n: 2 });
  });

  test("unknown, non-callable and failing methods answer success false with a stable code", async () => {
    const a = await connectByType(`${sockets.base}/counter-3?token=${TOKEN}`);
    sockets.opened.push(a.ws);
    a.ws.send(JSON.stringify({ type: "rpc", id: "u", method: "nope", args: [] }));
    const unknown = await a.next("rpc");
    assert.equal(unknown.success, false);
    assert.equal(unknown.code, "BRIDGE_ERR_RPC_UNKNOWN_METHOD");
    a.ws.send(JSON.stringify({ type: "rpc", id: "r", method: "reset", args: [] }));
    assert.equal((await a.next("rpc")).code, "BRIDGE_ERR_RPC_UNKNOWN_METHOD");
    a.ws.send(JSON.stringify({ type: "rpc", id: "f", method: "fail", args: [] }));
    const failed = await a.next("rpc");
    assert.equal(failed.success, false);
    assert.equal(failed.code, "BRIDGE_ERR_COUNTER_BROKEN");
  });
});
