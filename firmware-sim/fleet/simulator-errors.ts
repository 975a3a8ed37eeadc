/**
 * Bugs of the simulator itself: a device task or packet handler that threw. They are not violations (the system
 * under test did nothing wrong), but a run that had them cannot be trusted, so they are counted, logged once per
 * kind (a bug in a telemetry tick throws on every tick of every device: one line, not millions) and fail the verdict.
 */

/** One kind of simulator error, as the report lists it. */
export interface SimulatorErrorSummary {
  /** `name: message` of the error (first line, at most 200 characters). */
  kind: string;
  /** How many times it happened. */
  count: number;
  /** The device it happened to first; absent for a task of the fleet itself (ramp, API driver). */
  deviceId?: string;
  /** Fleet clock time of the first one, ms since the Unix epoch. */
  firstAtMs: number;
  /** The first one's stack, a few frames. */
  stack?: string;
}

/** Distinct kinds kept; further kinds are counted under one `other` entry, so memory stays bounded. */
const MAX_KINDS = 100;
const OTHER_KIND = "(other kinds, beyond the first 100)";

/**
 * Collects simulator errors by kind; `onFirst` hears the first of each kind (the fleet's `simulatorError` event). The
 * total of all kinds is the fleet's `simulatorErrors` counter.
 */
export class SimulatorErrorLog {
  readonly #byKind = new Map<string, SimulatorErrorSummary>();
  readonly #onFirst: (summary: SimulatorErrorSummary) => void;

  constructor(onFirst: (summary: SimulatorErrorSummary) => void) {
    this.#onFirst = onFirst;
  }

  /** Records one error; never throws (it runs where a throw would stop other devices). */
  record(err: unknown, deviceId: string | undefined, atMs: number): void {
    let kind = errorKind(err);
    if (!this.#byKind.has(kind) && this.#byKind.size >= MAX_KINDS) kind = OTHER_KIND;
    const known = this.#byKind.get(kind);
    if (known) {
      known.count++;
      return;
    }
    const summary: SimulatorErrorSummary = { kind, count: 1, firstAtMs: atMs };
    if (deviceId !== undefined) summary.deviceId = deviceId;
    const stack = err instanceof Error ? err.stack?.split("\n").slice(1, 6).join("\n") : undefined;
    if (stack) summary.stack = stack;
    this.#byKind.set(kind, summary);
    try {
      this.#onFirst({ ...summary });
    } catch {
      // A listener's own failure must not turn one device's bug into a fleet-wide one.
    }
  }

  /** One entry per kind, in the order first seen. */
  summaries(): SimulatorErrorSummary[] {
    return [...this.#byKind.values()].map((s) => ({ ...s }));
  }
}

function errorKind(err: unknown): string {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : `thrown value: ${String(err)}`;
  return (text.split("\n")[0] ?? text).slice(0, 200);
}
