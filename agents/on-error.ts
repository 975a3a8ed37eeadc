import type { Value } from "../codecs/frames.ts";
import type { Agent } from "./agent.ts";

/**
 * Calls `agent.onError`. An override may be async (its type returns void, which a promise satisfies): its promise is
 * not awaited, and a rejection of it is logged as a throw is. Left unhandled, it would end the process
 * (app/cli/start.ts exits on an unhandled rejection), every other agent with it. A synchronous throw is the caller's.
 */
export function callOnError(agent: Agent<Value>, err: unknown, event: string): void {
  const told: unknown = agent.onError(err, { event });
  // The agent's own logger carries its id.
  if (told instanceof Promise)
    told.catch((hookErr: unknown) => agent.env.logger.error({ err: hookErr }, "onError threw"));
}
