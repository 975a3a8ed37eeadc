/**
 * The WebSocket agent protocol reads client messages with the bridge's strict JSON parser, as device JSON and the HTTP
 * API do: an integer beyond ±(2^53-1) reaches the agent exactly (a bigint), not rounded to a double by `JSON.parse`,
 * and a key twice in one object is refused with an error message naming it instead of the last one winning.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Value } from "../../codecs/frames.ts";
import { Agent } from "../../agents/index.ts";
import { connectByType, servedAgentSocketRuntime } from "./agent-socket-server.ts";

const TOKEN = "ws-exact-json-token-0123456789";
const BIG = "12345678901234567890123";

/** Says what it was given, as the agent sees it: a type and the exact text of the value. */
class Probe extends Agent<Record<string, Value>> {
  static override callable = ["kind"];
  override initialState: Record<string, Value> = {};
  kind(value: Value): string {
    return `${typeof value}:${String(value)}`;
  }
  /** Reached through runtime.call only. */
  peek(key: string): string {
    const value = this.state[key];
    return `${typeof value}:${String(value)}`;
  }
}

describe("exact JSON in the WebSocket agent protocol", () => {
  const sockets = servedAgentSocketRuntime(Probe, TOKEN, "ws-exact-json");

  test("an rpc argument beyond 2^53 reaches the agent as that exact integer", async () => {
    const client = await connectByType(`${sockets.base}/probe-1?token=${TOKEN}`);
    sockets.opened.push(client.ws);
    client.ws.send(`{"type":"rpc","id":"big","method":"kind","args":[${BIG}]}`);
    assert.deepEqual(await client.next("rpc"), {
      type: "rpc",
      id: "big",
      success: true,
      result: `bigint:${BIG}`,
      done: true,
    });
    // Safe integers and floats are read as JSON.parse reads them.
    client.ws.send('{"type":"rpc","id":"small","method":"kind","args":[9007199254740991]}');
    assert.equal((await client.next("rpc")).result, "number:9007199254740991");
    client.ws.send('{"type":"rpc","id":"float","method":"kind","args":[1e300]}');
    assert.equal((await client.next("rpc")).result, "number:1e+300");
  });

  test("a state holding an integer beyond 2^53 is stored exactly, and other clients see its decimal text", async () => {
    const writer = await connectByType(`${sockets.base}/probe-2?token=${TOKEN}`);
    const viewer = await connectByType(`${sockets.base}/probe-2?token=${TOKEN}&readonly=1`);
    sockets.opened.push(writer.ws, viewer.ws);
    await viewer.next("cf_agent_state");
    writer.ws.send(`{"type":"cf_agent_state","state":{"serial":${BIG}}}`);
    assert.deepEqual((await viewer.next("cf_agent_state")).state, { serial: BIG });
    assert.deepEqual(await sockets.runtime.call("probe-2", "peek", ["serial"]), { ok: true, value: `bigint:${BIG}` });
  });

  test("a key twice in one object is refused naming it, with the rpc id, and nothing reaches the agent", async () => {
    const client = await connectByType(`${sockets.base}/probe-3?token=${TOKEN}`);
    sockets.opened.push(client.ws);
    client.ws.send('{"type":"rpc","id":"dup","method":"kind","args":[{"a":1,"a":2}]}');
    const refused = await client.next("error");
    assert.equal(refused.code, "BRIDGE_ERR_WS_BAD_MESSAGE");
    assert.equal(refused.message, "args[0].a: duplicate map key");
    assert.equal(refused.id, "dup");
    client.ws.send('{"type":"cf_agent_state","state":{"led":"on","led":"off"}}');
    assert.equal((await client.next("error")).message, "state.led: duplicate map key");
    assert.deepEqual(await sockets.runtime.call("probe-3", "peek", ["led"]), {
      ok: true,
      value: "undefined:undefined",
    });
    // The socket is still usable.
    client.ws.send('{"type":"rpc","id":"after","method":"kind","args":[1]}');
    assert.equal((await client.next("rpc")).result, "number:1");
  });

  test("invalid JSON is still BRIDGE_ERR_WS_BAD_JSON, now saying where", async () => {
    const client = await connectByType(`${sockets.base}/probe-4?token=${TOKEN}`);
    sockets.opened.push(client.ws);
    client.ws.send('{"type":"rpc",}');
    const refused = await client.next("error");
    assert.equal(refused.code, "BRIDGE_ERR_WS_BAD_JSON");
    assert.match(String(refused.message), /^message is not valid JSON: unexpected "}" at position 14$/);
  });
});
