/**
 * The WebSocket agent protocol refuses text no device frame can carry, as the HTTP API and device JSON do: a lone
 * surrogate (`"\ud800"`, which `JSON.parse` takes) in a value or a key of a client message is an error frame naming
 * its path, with the rpc id, and nothing reaches the agent. A text frame that is not valid UTF-8 closes the socket
 * with 1007 (RFC 6455 8.1, done by the ws library). A surrogate pair (an emoji) passes byte for byte.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { describe, test } from "node:test";
import WebSocket from "ws";
import type { Value } from "../../codecs/frames.ts";
import { Agent } from "../../agents/index.ts";
import { connectByType, servedAgentSocketRuntime } from "./agent-socket-server.ts";

const TOKEN = "ws-lone-surrogates-token-0123456789";

/** Echoes what it was given; counts the calls that reached it. */
class Echo extends Agent<Record<string, Value>> {
  static override callable = ["echo"];
  override initialState: Record<string, Value> = {};
  calls = 0;
  echo(value: Value): Value {
    this.calls++;
    return value;
  }
  /** Reached through runtime.call only. */
  seen(): { calls: number; state: Record<string, Value> } {
    return { calls: this.calls, state: this.state };
  }
}

describe("lone surrogates in the WebSocket agent protocol", { timeout: 10_000 }, () => {
  const sockets = servedAgentSocketRuntime(Echo, TOKEN, "ws-lone-surrogates");

  test("an rpc argument or a state holding a lone surrogate is refused naming it, and nothing reaches the agent", async () => {
    const client = await connectByType(`${sockets.base}/echo-1?token=${TOKEN}`);
    sockets.opened.push(client.ws);
    client.ws.send('{"type":"rpc","id":"lone","method":"echo","args":[{"q":"why\\ud800"}]}');
    const value = await client.next("error");
    assert.equal(value.code, "BRIDGE_ERR_WS_BAD_MESSAGE");
    assert.match(String(value.message), /^args\[0\]\.q: text holds a lone surrogate \\ud800/);
    assert.equal(value.id, "lone");
    client.ws.send('{"type":"rpc","id":"key","method":"echo","args":[{"k\\udc00":1}]}');
    const key = await client.next("error");
    assert.match(String(key.message), /^args\[0\]\.k\\udc00: a key holds a lone surrogate \\udc00/);
    assert.equal(key.id, "key");
    client.ws.send('{"type":"cf_agent_state","state":{"label":"\\udfff"}}');
    assert.match(String((await client.next("error")).message), /^state\.label: text holds a lone surrogate/);
    assert.deepEqual(await sockets.runtime.call("echo-1", "seen", []), { ok: true, value: { calls: 0, state: {} } });
    // The socket is still usable.
    client.ws.send('{"type":"rpc","id":"after","method":"echo","args":[1]}');
    assert.equal((await client.next("rpc")).result, 1);
  });

  test("a lone surrogate in the rpc id is refused without echoing that id", async () => {
    const client = await connectByType(`${sockets.base}/echo-2?token=${TOKEN}`);
    sockets.opened.push(client.ws);
    client.ws.send('{"type":"rpc","id":"x\\ud800","method":"echo","args":[1]}');
    const refused = await client.next("error");
    assert.match(String(refused.message), /^id: text holds a lone surrogate/);
    assert.equal(refused.id, undefined);
  });

  test("a message that is itself a string with a lone surrogate is refused naming the message", async () => {
    const client = await connectByType(`${sockets.base}/echo-5?token=${TOKEN}`);
    sockets.opened.push(client.ws);
    client.ws.send('"\\ud800"');
    const refused = await client.next("error");
    assert.equal(refused.code, "BRIDGE_ERR_WS_BAD_MESSAGE");
    assert.equal(refused.message, "message: text holds a lone surrogate \\ud800, which UTF-8 cannot carry");
    assert.equal(refused.id, undefined);
  });

  test("a text frame that is not valid UTF-8 closes the socket with 1007", async () => {
    const ws = new WebSocket(`${sockets.base}/echo-3?token=${TOKEN}`);
    sockets.opened.push(ws);
    await once(ws, "open");
    ws.on("error", () => {}); // the server's close is the outcome under test
    const cesu = Buffer.concat([
      Buffer.from('{"type":"rpc","id":"b","method":"echo","args":["'),
      Buffer.from([0xed, 0xa0, 0x80]),
      Buffer.from('"]}'),
    ]);
    ws.send(cesu, { binary: false });
    const [code] = (await once(ws, "close")) as [number];
    assert.equal(code, 1007);
    assert.deepEqual(await sockets.runtime.call("echo-3", "seen", []), { ok: true, value: { calls: 0, state: {} } });
  });

  test("a surrogate pair, escaped or as UTF-8, reaches the agent and comes back byte for byte", async () => {
    const client = await connectByType(`${sockets.base}/echo-4?token=${TOKEN}`);
    sockets.opened.push(client.ws);
    const raw: Buffer[] = [];
    client.ws.on("message", (data) => raw.push(data as Buffer));
    client.ws.send('{"type":"rpc","id":"e1","method":"echo","args":[{"\\ud83d\\ude00":"\\ud83d\\ude00"}]}');
    assert.deepEqual((await client.next("rpc")).result, { "😀": "😀" });
    client.ws.send('{"type":"rpc","id":"e2","method":"echo","args":["😀"]}');
    assert.equal((await client.next("rpc")).result, "😀");
    const emoji = Buffer.from([0xf0, 0x9f, 0x98, 0x80]);
    const answers = raw.filter((b) => b.includes(emoji));
    assert.equal(answers.length, 2);
  });
});
