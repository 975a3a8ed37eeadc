/**
 * A fair waiting queue: strict priority between levels, round-robin between agents inside a level, FIFO
 * within one agent. An agent with 100 waiting requests gets one turn per round like an agent with one, so a
 * chatty device cannot push a quiet device's request behind all of its own.
 */

interface Level<T> {
  /** Waiting items per agent. Map iteration order is the round-robin ring: the next agent to serve is first. */
  agents: Map<string, T[]>;
}

/** A priority-aware, per-agent round-robin queue. */
export class FairQueue<T> {
  #levels = new Map<number, Level<T>>();
  /** Priorities in descending order, kept sorted so `shift` finds the highest level at once. */
  #priorities: number[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  push(agentId: string, priority: number, item: T): void {
    let level = this.#levels.get(priority);
    if (level === undefined) {
      level = { agents: new Map() };
      this.#levels.set(priority, level);
      this.#priorities.push(priority);
      this.#priorities.sort((a, b) => b - a);
    }
    const items = level.agents.get(agentId);
    if (items === undefined) level.agents.set(agentId, [item]);
    else items.push(item);
    this.#size++;
  }

  /** Takes the next item: highest priority, then the agent whose turn it is. */
  shift(): T | undefined {
    for (const priority of this.#priorities) {
      const level = this.#levels.get(priority)!;
      const first = level.agents.entries().next();
      if (first.done) continue;
      const [agentId, items] = first.value;
      const item = items.shift() as T;
      // Moving the agent to the end of the Map is what makes the turn go round.
      level.agents.delete(agentId);
      if (items.length > 0) level.agents.set(agentId, items);
      else if (level.agents.size === 0) this.#dropLevel(priority);
      this.#size--;
      return item;
    }
    return undefined;
  }

  /** Removes one waiting item (cancelled or past its deadline). Returns false when it was not waiting. */
  remove(agentId: string, priority: number, item: T): boolean {
    const level = this.#levels.get(priority);
    const items = level?.agents.get(agentId);
    if (level === undefined || items === undefined) return false;
    const index = items.indexOf(item);
    if (index === -1) return false;
    items.splice(index, 1);
    if (items.length === 0) {
      level.agents.delete(agentId);
      if (level.agents.size === 0) this.#dropLevel(priority);
    }
    this.#size--;
    return true;
  }

  /** Removes and returns everything, in no particular order (used on close). */
  drain(): T[] {
    const all: T[] = [];
    for (const level of this.#levels.values()) for (const items of level.agents.values()) all.push(...items);
    this.#levels.clear();
    this.#priorities = [];
    this.#size = 0;
    return all;
  }

  #dropLevel(priority: number): void {
    this.#levels.delete(priority);
    this.#priorities = this.#priorities.filter((p) => p !== priority);
  }
}
