/**
 * Random streams of a fleet. Devices draw at times that real timing and the network decide (a reading at each tick, a
 * jitter at each lost connection, a duplicate decision at each publish), so with one stream for the whole fleet the
 * order of draws, and with it every later value, changed from run to run even with the same seed. A seeded fleet
 * therefore gives each device its own streams, one per purpose, derived from the seed and the device's index: what a
 * device draws for one purpose depends on neither the other devices nor its own other draws.
 */
import { type RandomSource, seededRandom } from "./clock.ts";

/** What a device draws random numbers for; each purpose has its own stream in a seeded fleet. */
export const DRAW_PURPOSES = [
  /** Clock skew and whether the device has a clock, drawn once when the fleet is built. */
  "setup",
  /** Telemetry phase and readings. */
  "telemetry",
  /** Reconnect jitter. */
  "backoff",
  /** Time to the next network loss. */
  "drops",
  /** Which publishes are sent twice (QoS 1 duplicates). */
  "duplicates",
  /** When a reasoning device asks its next question. */
  "reasoning",
  /** The operator API driver's phase and choices for this device. */
  "operator",
] as const;

export type DrawPurpose = (typeof DRAW_PURPOSES)[number];

/** One device's random streams, by purpose. */
export type DeviceRandom = Readonly<Record<DrawPurpose, RandomSource>>;

/** The random streams of a fleet: its own (the run nonce) and each device's, by power-on index. */
export interface FleetRandom {
  readonly fleet: RandomSource;
  device(index: number): DeviceRandom;
}

/**
 * A 32-bit seed for stream `keys` of `seed` (murmur3's finaliser over each key mixed in with the golden ratio), so
 * neighbouring indexes give unrelated streams rather than shifted copies of one mulberry32 sequence.
 */
export function deriveSeed(seed: number, ...keys: readonly number[]): number {
  let h = seed >>> 0;
  for (const key of keys) {
    h = (h ^ Math.imul((key >>> 0) + 1, 0x9e3779b9)) >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    h = (h ^ (h >>> 16)) >>> 0;
  }
  return h;
}

/**
 * Streams of a fleet built from `seed`: device `index` draws for each purpose from its own mulberry32 stream.
 *
 * @example
 * const random = seededFleetRandom(42);
 * random.device(3).backoff(); // the same value in every run with seed 42, whatever the other devices drew
 */
export function seededFleetRandom(seed: number): FleetRandom {
  return {
    fleet: seededRandom(deriveSeed(seed)),
    device(index) {
      const streams = DRAW_PURPOSES.map((purpose, p) => [purpose, seededRandom(deriveSeed(seed, index, p))]);
      return Object.fromEntries(streams) as Record<DrawPurpose, RandomSource>;
    },
  };
}

/**
 * Every stream of every device is `random` itself, drawn in the order the fleet happens to draw: for a test that
 * scripts what is drawn (a constant, a sequence, a source that throws), and for unseeded runs.
 */
export function sharedFleetRandom(random: RandomSource): FleetRandom {
  const device = Object.fromEntries(DRAW_PURPOSES.map((purpose) => [purpose, random])) as Record<
    DrawPurpose,
    RandomSource
  >;
  return { fleet: random, device: () => device };
}
