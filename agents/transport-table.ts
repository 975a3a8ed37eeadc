import type { ConnectionTransport } from "./host.ts";

/** The one connection of an agent that has exactly one (a device and its MQTT session: the common case). */
interface Single {
  readonly connectionId: string;
  readonly transport: ConnectionTransport;
}

/**
 * The live transports of every agent's open connections, kept by the runtime while agents hibernate, so this is
 * what a hibernated agent with a connected device costs in memory. An agent with one connection holds a two-field
 * record instead of a Map of its own (a Map's table is several times larger); a second connection turns it into a
 * Map. See docs/benchmarks.md, "Agents", memory per hibernated agent.
 */
export class TransportTable {
  readonly #byAgent = new Map<string, Single | Map<string, ConnectionTransport>>();

  get(agentId: string, connectionId: string): ConnectionTransport | undefined {
    const slot = this.#byAgent.get(agentId);
    if (slot === undefined) return undefined;
    if (slot instanceof Map) return slot.get(connectionId);
    return slot.connectionId === connectionId ? slot.transport : undefined;
  }

  set(agentId: string, connectionId: string, transport: ConnectionTransport): void {
    const slot = this.#byAgent.get(agentId);
    if (slot === undefined || (!(slot instanceof Map) && slot.connectionId === connectionId)) {
      this.#byAgent.set(agentId, { connectionId, transport });
      return;
    }
    if (slot instanceof Map) {
      slot.set(connectionId, transport);
      return;
    }
    this.#byAgent.set(
      agentId,
      new Map([
        [slot.connectionId, slot.transport],
        [connectionId, transport],
      ]),
    );
  }

  delete(agentId: string, connectionId: string): void {
    const slot = this.#byAgent.get(agentId);
    if (slot === undefined) return;
    if (!(slot instanceof Map)) {
      if (slot.connectionId === connectionId) this.#byAgent.delete(agentId);
      return;
    }
    slot.delete(connectionId);
    if (slot.size === 0) this.#byAgent.delete(agentId);
    else if (slot.size === 1) {
      // Back to the compact form, so a device that once had a viewer attached costs what it did before.
      const [[id, transport]] = slot;
      this.#byAgent.set(agentId, { connectionId: id, transport });
    }
  }

  /** Removes and returns every transport of an agent (its destruction). */
  take(agentId: string): ConnectionTransport[] {
    const slot = this.#byAgent.get(agentId);
    this.#byAgent.delete(agentId);
    if (slot === undefined) return [];
    return slot instanceof Map ? [...slot.values()] : [slot.transport];
  }

  /** Agents with at least one open connection. */
  get agents(): number {
    return this.#byAgent.size;
  }
}
