import type { Value } from "../codecs/frames.ts";
import { BridgeError } from "../errors/bridge-error.ts";
import type { Agent } from "./agent.ts";
import type { AgentCell } from "./cell.ts";
import { AGENT_ERRORS, errorCode, errorMessage } from "./errors.ts";
import type { InboundMessage } from "./host.ts";
import { callableNames, findPublicMethod } from "./invoke.ts";
import type { Connection } from "./types.ts";

/**
 * The base `onMessage`: `up/rpc` runs a `static callable` method in its own savepoint and replies on `down/rpc`
 * (a throwing method rolls back alone; the reply still goes out); `client-state` replaces the state unless the
 * connection is readonly. Other channels are left to subclasses (DeviceAgent).
 */
export async function handleDefaultMessage(
  agent: Agent<Value>,
  cell: AgentCell,
  conn: Connection,
  message: InboundMessage,
): Promise<void> {
  switch (message.channel) {
    case "rpc": {
      const { id, m, a } = message.frame;
      const fn = callableNames(agent).has(m) ? findPublicMethod(agent, m) : undefined;
      if (fn === undefined) {
        conn.send({ channel: "rpc", frame: { id, ok: false, err: AGENT_ERRORS.RPC_UNKNOWN_METHOD } });
        return;
      }
      try {
        const res = await cell.nestedAsync(async () => fn.apply(agent, Array.isArray(a) ? a : []));
        conn.send({ channel: "rpc", frame: { id, ok: true, res: (res === undefined ? null : res) as Value } });
      } catch (err) {
        cell.reportError(err, `rpc:${m}`);
        const code = err instanceof BridgeError ? err.code : AGENT_ERRORS.RPC_FAILED;
        conn.send({ channel: "rpc", frame: { id, ok: false, err: code } });
      }
      return;
    }
    case "client-state": {
      if (conn.readonly) {
        conn.send({
          channel: "error",
          frame: { code: AGENT_ERRORS.READONLY, msg: "this connection may not change state" },
        });
        return;
      }
      try {
        cell.setAgentState(message.frame.state, conn);
      } catch (err) {
        const code = err instanceof BridgeError ? errorCode(err) : AGENT_ERRORS.STATE_INVALID;
        conn.send({ channel: "error", frame: { code, msg: errorMessage(err) } });
      }
      return;
    }
    default:
      return;
  }
}
