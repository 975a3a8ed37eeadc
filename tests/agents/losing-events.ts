/**
 * Agents whose work can fail on demand in the two ways the alarm backoff tells apart: an event that loses its whole
 * transaction (the runtime backs the agent's alarm off and holds the due work), and one item that throws inside a
 * committed event (retried by its own options).
 */
import assert from "node:assert/strict";
import { Agent, type AgentRuntime } from "../../agents/index.ts";
import { settle } from "../support/manual-clock.ts";

let losing = 0;

/** Payloads whose work throws once (a failing item, retried by its own options inside a committed event). */
export const throwingOnce = new Set<string>();

/** The next `count` runs of work lose their whole event's transaction; 0 ends that (in a test's `finally`). */
export function loseNextEvents(count: number): void {
  losing = count;
}

/** An agent with a table to write to, whose `failIfAsked` makes the running work fail as the test asked. */
export abstract class LosingAgent extends Agent {
  override onStart(): void {
    this.sql`CREATE TABLE IF NOT EXISTS u (k INTEGER PRIMARY KEY)`;
    this.sql`INSERT OR IGNORE INTO u (k) VALUES (1)`;
  }

  /** Throws for a payload in `throwingOnce`; while events are to be lost, rolls the whole event's transaction back. */
  protected failIfAsked(payload: string): void {
    if (throwingOnce.delete(payload)) throw new Error(`${payload} fails once`);
    if (losing > 0) {
      losing--;
      // SQLite rolls the whole transaction back on its own, and the event fails with it.
      this.sql`INSERT OR ROLLBACK INTO u (k) VALUES (1)`;
    }
  }
}

/**
 * Wakes `agentId` (its `queued` method) and queues `payload` (its `enqueue` method) in a flush that loses its
 * transaction: the item is held for the alarm backoff (1 s), and has not run.
 */
export async function enqueueHeld(rt: AgentRuntime, agentId: string, payload: string, ran: string[]): Promise<void> {
  assert.equal((await rt.call(agentId, "queued", [])).ok, true, "awake first");
  loseNextEvents(1);
  assert.equal((await rt.call(agentId, "enqueue", [payload])).ok, true);
  await settle();
  assert.deepEqual(ran, [], `${payload}'s flush lost its transaction: ${payload} is held for the backoff (1 s)`);
}
