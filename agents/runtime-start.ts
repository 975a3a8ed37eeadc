import type { Runtime } from "./runtime.ts";
import { runEvent } from "./runtime-registry.ts";

/**
 * The most agents `start()` wakes at once. Each wake opens a database, and an agent whose onStart (or whose wake's
 * queue flush) awaits stays in memory until it ends, where the cap cannot evict it: woken all together, thousands of
 * pending agents held thousands of databases open past `maxActiveAgents` at a restart.
 */
export const START_WAKE_CONCURRENCY = 64;

/** Wakes `ids` (agents marked pending at the last stop), at most `limit` at a time; resolves when all have woken. */
export async function wakePendingAgents(rt: Runtime, ids: readonly string[], limit: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ids.length) {
      const id = ids[next++];
      await runEvent(rt, id, { kind: "wake" }, false);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, ids.length)) }, worker));
}
