/**
 * Waits for a condition instead of a fixed time, so the tests hold on a slow or busy machine. The timeout is generous
 * and only there to end a test that would otherwise hang.
 */
import type { Fleet, FleetReport, FleetStats } from "../../../firmware-sim/index.ts";

export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Starts `fleet`, waits until `condition` holds on its stats, then stops it and returns the report. */
export async function runUntil(
  fleet: Fleet,
  condition: (stats: FleetStats) => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<FleetReport> {
  void fleet.start();
  try {
    await waitUntil(() => condition(fleet.stats()), what, timeoutMs);
  } finally {
    // Stopped either way so sockets close; a timeout still fails the test with its message.
    await fleet.stop();
  }
  return fleet.stop();
}
