/**
 * A small in-memory AgentHost for unit-level tests of the WebSocket endpoint: identity and state on open,
 * state broadcast to other protocol connections, rpc to a method table. The real runtime is exercised in
 * ws-runtime.test.ts.
 */
import type { Value } from "../../codecs/frames.ts";
import type { AgentHost, ConnectionInit, DeliverOutcome, EventResult } from "../../agents/host.ts";

export class FakeHost implements AgentHost {
  state: Value = { count: 0 };
  readonly connections = new Map<string, ConnectionInit>();
  readonly closed: string[] = [];
  readonly events: string[] = [];
  /** When set, the next deliveries are refused as mailbox-full until `release()` is called. */
  #full: { promise: Promise<void>; resolve: () => void } | undefined;
  methods: Record<string, (...args: Value[]) => Value> = {
    add: (a, b) => Number(a) + Number(b),
  };

  fill(): void {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    this.#full = { promise, resolve };
  }

  release(): void {
    const full = this.#full;
    this.#full = undefined;
    full?.resolve();
  }

  async open(agentId: string, c: ConnectionInit): Promise<EventResult> {
    this.connections.set(c.id, c);
    this.events.push(`open:${agentId}:${c.readonly ? "ro" : "rw"}`);
    c.transport.sendProtocol({
      type: "identity",
      name: "FakeAgent",
      agent: agentId,
      protocolVersion: 1,
      serverTime: 42,
    });
    c.transport.sendProtocol({ type: "state", state: this.state });
    return { status: "committed" };
  }

  deliver(_agentId: string, connectionId: string, message: Parameters<AgentHost["deliver"]>[2]): DeliverOutcome {
    if (this.#full !== undefined) return { accepted: false, reason: "mailbox-full", ready: this.#full.promise };
    const conn = this.connections.get(connectionId);
    if (conn === undefined) throw new Error("unknown connection");
    this.events.push(`deliver:${message.channel}`);
    const done = (async (): Promise<EventResult> => {
      if (message.channel === "client-state") {
        if (conn.readonly) return { status: "failed", code: "BRIDGE_ERR_READONLY", message: "readonly" };
        this.state = message.frame.state;
        for (const other of this.connections.values()) {
          if (other.id !== connectionId) other.transport.sendProtocol({ type: "state", state: this.state });
        }
        return { status: "committed" };
      }
      if (message.channel === "rpc") {
        const { id, m, a } = message.frame;
        if (m === "explode") return { status: "failed", code: "BRIDGE_ERR_AGENT_HANDLER", message: "handler threw" };
        const fn = this.methods[m];
        if (fn === undefined) {
          conn.transport.send({ channel: "rpc", frame: { id, ok: false, err: `no callable method ${m}` } }, { qos: 0 });
        } else {
          conn.transport.send({ channel: "rpc", frame: { id, ok: true, res: fn(...(a ?? [])) } }, { qos: 0 });
        }
      }
      return { status: "committed" };
    })();
    return { accepted: true, done };
  }

  async close(agentId: string, connectionId: string): Promise<EventResult> {
    this.connections.delete(connectionId);
    this.closed.push(agentId);
    return { status: "committed" };
  }
}
