/**
 * The operator API's dependencies with nothing behind them (no agent, no device, no connection): for a test of one
 * route that needs the rest of `OperatorDeps` only to mount, without the real runtime helpers.ts builds.
 */
import type { OperatorBroker, OperatorRegistry, OperatorRuntime } from "../../app/api/deps.ts";

export function idleOperatorDeps(): { runtime: OperatorRuntime; registry: OperatorRegistry; broker: OperatorBroker } {
  return {
    runtime: {
      call: async () => ({ ok: true, value: null }),
      directory: { list: () => [] },
      stats: () => ({ active: 0, hibernated: 0, mailboxDepth: 0, commits: 0 }),
      destroyAgent: async () => false,
      closed: false,
    },
    registry: {
      add: async () => ({ status: "invalid", field: "id", message: "not in this test" }),
      get: () => undefined,
      list: () => [],
      count: () => 0,
      remove: () => false,
      rotateSecret: async () => undefined,
    },
    broker: { isOnline: () => false, connectedDevices: () => [] },
  };
}
