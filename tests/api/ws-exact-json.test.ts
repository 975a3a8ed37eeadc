/**
 * The WebSocket agent protocol reads client messages with the bridge's strict JSON parser, as device JSON and the HTTP
 * API do: an integer beyond ±(2^53-1) reaches the agent exactly (a bigint), not rounded to a double by `JSON.parse`,
 * and a key twice in one object is refused with an error message naming it instead of the last one winning.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import pino from "pino";
import WebSocket from "ws";
import type { Value } from "../../codecs/frames.ts";
import { Agent, createRuntime } from "../../agents/index.ts";
import type { AgentRuntime } from "../../agents/types.ts";
import { createAgentSocketServer } from "../../app/ws/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { type ServedAgentSockets, serveAgentSockets } from "./agent-socket-server.ts";

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

type Message = Record<string, unknown>;

function connect(url: string): Promise<{ ws: WebSocket; next: (type: string) => Promise<Message> }> {
  const ws = new WebSocket(url);
  const queue: Message[] = [];
  const waiters: Array<{ type: string; resolve: (m: Message) => void }> = [];
  ws.on("message", (data) => {
    const m = JSON.parse(String(data)) as Message;
    const i = waiters.findIndex((w) => w.type === m.type);
    if (i >= 0) waiters.splice(i, 1)[0]?.resolve(m);
    else queue.push(m);
  });
  const next = (type: string) => {
    const i = queue.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0] as Message);
    return new Promise<Message>((resolve) => waiters.push({ type, resolve }));
  };
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve({ ws, next }));
    ws.once("error", reject);
  });
}

describe("exact JSON in the WebSocket agent protocol", () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ws-exact-json-"));
  let runtime: AgentRuntime;
  let served: ServedAgentSockets;
  let base: string;
  const opened: WebSocket[] = [];

  before(async () => {
    runtime = createRuntime({
      dataDir,
      defaultAgentClass: Probe,
      clock: new ManualClock(Date.UTC(2026, 0, 1)),
      random: () => 0.5,
      logger: pino({ level: "silent" }),
    });
    await runtime.start();
    served = await serveAgentSockets(createAgentSocketServer({ host: runtime, apiToken: TOKEN }));
    base = `${served.url}/agents`;
  });

  after(async () => {
    for (const ws of opened) ws.terminate();
    await served.close();
    await runtime.shutdown();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test("an rpc argument beyond 2^53 reaches the agent as that exact integer", async () => {
    const client = await connect(`${base}/probe-1?token=${TOKEN}`);
    opened.push(client.ws);
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
    const writer = await connect(`${base}/probe-2?token=${TOKEN}`);
    const viewer = await connect(`${base}/probe-2?token=${TOKEN}&readonly=1`);
    opened.push(writer.ws, viewer.ws);
    await viewer.next("cf_agent_state");
    writer.ws.send(`{"type":"cf_agent_state","state":{"serial":${BIG}}}`);
    assert.deepEqual((await viewer.next("cf_agent_state")).state, { serial: BIG });
    assert.deepEqual(await runtime.call("probe-2", "peek", ["serial"]), { ok: true, value: `bigint:${BIG}` });
  });

  test("a key twice in one object is refused naming it, with the rpc id, and nothing reaches the agent", async () => {
    const client = await connect(`${base}/probe-3?token=${TOKEN}`);
    opened.push(client.ws);
    client.ws.send('{"type":"rpc","id":"dup","method":"kind","args":[{"a":1,"a":2}]}');
    const refused = await client.next("error");
    assert.equal(refused.code, "BRIDGE_ERR_WS_BAD_MESSAGE");
    assert.equal(refused.message, "args[0].a: duplicate map key");
    assert.equal(refused.id, "dup");
    client.ws.send('{"type":"cf_agent_state","state":{"led":"on","led":"off"}}');
    assert.equal((await client.next("error")).message, "state.led: duplicate map key");
    assert.deepEqual(await runtime.call("probe-3", "peek", ["led"]), { ok: true, value: "undefined:undefined" });
    // The socket is still usable.
    client.ws.send('{"type":"rpc","id":"after","method":"kind","args":[1]}');
    assert.equal((await client.next("rpc")).result, "number:1");
  });

  test("invalid JSON is still BRIDGE_ERR_WS_BAD_JSON, now saying where", async () => {
    const client = await connect(`${base}/probe-4?token=${TOKEN}`);
    opened.push(client.ws);
    client.ws.send('{"type":"rpc",}');
    const refused = await client.next("error");
    assert.equal(refused.code, "BRIDGE_ERR_WS_BAD_JSON");
    assert.match(String(refused.message), /^message is not valid JSON: unexpected "}" at position 14$/);
  });
});
