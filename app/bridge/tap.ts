/**
 * A read-only tap on the traffic between transports and agents: every inbound message and every down frame an
 * agent sends, by agent id. The demo prints reasoning answers with it; it never changes what flows.
 */
import type { AgentHost, ConnectionInit, InboundMessage } from "../../agents/host.ts";
import type { DownMessage } from "../../codecs/frames.ts";

export interface BridgeTap {
  /** A message a transport delivered to agent `agentId`. */
  up?(agentId: string, message: InboundMessage): void;
  /** A frame agent `agentId` sent to one of its connections (after its event committed). */
  down?(agentId: string, message: DownMessage): void;
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // A faulty observer must never break device traffic.
  }
}

/** Wraps `host` so `tap` sees the traffic; every other member stays reachable unchanged. */
export function tapHost<H extends AgentHost>(host: H, tap: BridgeTap): H {
  const open = (agentId: string, connection: ConnectionInit) => {
    const transport = connection.transport;
    return host.open(agentId, {
      ...connection,
      transport: {
        send: (message, options) => {
          if (tap.down) safely(() => tap.down?.(agentId, message));
          transport.send(message, options);
        },
        sendProtocol: (message) => transport.sendProtocol(message),
        close: (reason, as) => transport.close(reason, as),
      },
    });
  };
  const deliver: AgentHost["deliver"] = (agentId, connectionId, message) => {
    if (tap.up) safely(() => tap.up?.(agentId, message));
    return host.deliver(agentId, connectionId, message);
  };
  return new Proxy(host, {
    get(target, prop) {
      if (prop === "open") return open;
      if (prop === "deliver") return deliver;
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
