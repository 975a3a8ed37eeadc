/**
 * The order in which a benchmark's modes (sides) run in one round: rotated by one from round to round, so no mode
 * always runs first (on a warmer or cooler machine, right after the untimed warm-up) or always right after the same
 * other mode (whose writeback or GC it would inherit).
 */

/** `modes` starting at position `turn` (taken modulo their count), the ones before it moved to the end. */
export function rotated<T>(modes: readonly T[], turn: number): T[] {
  if (modes.length === 0) return [];
  const start = ((turn % modes.length) + modes.length) % modes.length;
  return [...modes.slice(start), ...modes.slice(0, start)];
}
