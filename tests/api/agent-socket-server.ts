/**
 * The WebSocket agent endpoint served for a test as the bridge's HTTP server serves it: an HTTP server on 127.0.0.1
 * port 0 that hands every upgrade to the agent socket server; and, on top of it, a real runtime of one agent class
 * with a client that takes the server's messages by type, which the protocol suites against the runtime share.
 */
import fs from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { after, before } from "node:test";
import WebSocket from "ws";
import { type AgentClass, type AgentRuntime, createRuntime } from "../../agents/index.ts";
import type { SocketObserver } from "../../app/metrics/index.ts";
import { type AgentSocketServer, createAgentSocketServer, NO_SOCKET_OBSERVER } from "../../app/ws/index.ts";
import { ManualClock } from "../support/manual-clock.ts";

export interface ServedAgentSockets {
  /** `ws://127.0.0.1:<port>`; agents are under `/agents/{id}`. */
  url: string;
  /** Closes the socket server (and so its clients' sockets), then the HTTP server. */
  close(): Promise<void>;
}

/** A socket server observer that does nothing except what `watch` gives: a test listens for the events it needs. */
export function socketObserver(watch: Partial<SocketObserver>): SocketObserver {
  return { ...NO_SOCKET_OBSERVER, ...watch };
}

export async function serveAgentSockets(sockets: AgentSocketServer): Promise<ServedAgentSockets> {
  const server = createServer();
  server.on("upgrade", (req, socket, head) => sockets.handleUpgrade(req, socket, head));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      await sockets.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A started runtime of one agent class behind served agent sockets, on its own data dir. */
export interface AgentSocketRuntime {
  runtime: AgentRuntime;
  /** `ws://127.0.0.1:<port>/agents`: a client connects to `${base}/{id}?token=...`. */
  base: string;
  /** Closes the sockets, shuts the runtime down and removes its data dir. */
  close(): Promise<void>;
}

/**
 * `name` prefixes the data dir; the clock is manual and randomness fixed, so the suites stay deterministic. `observer`
 * is the socket server's (a test waits on it for what reached the server).
 */
export async function startAgentSocketRuntime(
  defaultAgentClass: AgentClass,
  apiToken: string,
  name: string,
  observer?: SocketObserver,
): Promise<AgentSocketRuntime> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `${name}-`));
  const runtime = createRuntime({
    dataDir,
    defaultAgentClass,
    clock: new ManualClock(Date.UTC(2026, 0, 1)),
    random: () => 0.5,
    logger: pino({ level: "silent" }),
  });
  await runtime.start();
  const served = await serveAgentSockets(createAgentSocketServer({ host: runtime, apiToken, observer }));
  return {
    runtime,
    base: `${served.url}/agents`,
    async close() {
      await served.close();
      await runtime.shutdown();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The suite set-up the protocol suites share: `startAgentSocketRuntime` before the suite's tests, and after them every
 * client the tests pushed to `opened` terminated and the runtime closed. Read `runtime` and `base` inside tests.
 */
export function servedAgentSocketRuntime(
  defaultAgentClass: AgentClass,
  apiToken: string,
  name: string,
  observer?: SocketObserver,
): { readonly runtime: AgentRuntime; readonly base: string; opened: WebSocket[] } {
  let served: AgentSocketRuntime | undefined;
  const started = (): AgentSocketRuntime => {
    if (served === undefined) throw new Error("the agent socket runtime is read before the suite started it");
    return served;
  };
  const opened: WebSocket[] = [];
  before(async () => {
    served = await startAgentSocketRuntime(defaultAgentClass, apiToken, name, observer);
  });
  after(async () => {
    for (const ws of opened) ws.terminate();
    await served?.close();
  });
  return {
    get runtime() {
      return started().runtime;
    },
    get base() {
      return started().base;
    },
    opened,
  };
}

export type ServerMessage = Record<string, unknown>;

/** A connected client whose `next(type)` resolves with the first message of that type not taken yet. */
export interface TypedClient {
  ws: WebSocket;
  next(type: string): Promise<ServerMessage>;
}

export function connectByType(url: string): Promise<TypedClient> {
  const ws = new WebSocket(url);
  const queue: ServerMessage[] = [];
  const waiters: Array<{ type: string; resolve: (m: ServerMessage) => void }> = [];
  ws.on("message", (data) => {
    const m = JSON.parse(String(data)) as ServerMessage;
    const i = waiters.findIndex((w) => w.type === m.type);
    if (i >= 0) waiters.splice(i, 1)[0]?.resolve(m);
    else queue.push(m);
  });
  const next = (type: string) => {
    const i = queue.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0] as ServerMessage);
    return new Promise<ServerMessage>((resolve) => waiters.push({ type, resolve }));
  };
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve({ ws, next }));
    ws.once("error", reject);
  });
}
