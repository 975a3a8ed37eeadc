/**
 * Violations: an invariant the system under test broke, seen from the device side. They are values collected during
 * the run and reported at the end (a non-zero exit code when any is found), never exceptions.
 */

/** Stable kinds of violation (docs/firmware-sim.md lists them). */
export type ViolationKind =
  /** A telemetry message got a PUBACK but could not be read back afterwards ("acknowledged means stored"). */
  | "telemetry-lost"
  /** Reading telemetry back failed (API unreachable, hook threw), so the check could not be made. */
  | "telemetry-unverifiable"
  /** A device speaking a binary codec received a JSON text frame. */
  | "json-to-binary-device"
  /** A down frame larger than the `maxFrame` the device announced in its hello. */
  | "frame-too-large"
  /** A down frame the device could not decode in its own codec. */
  | "undecodable-down-frame"
  /** A command was received but no ack of it was acknowledged (PUBACK) by the end of the run. */
  | "command-unacked"
  /** A command whose ack got a PUBACK is still waiting (QUEUED or SENT) on the bridge afterwards. */
  | "command-ack-unrecorded"
  /** A command whose ack got a PUBACK is finished on the bridge with another outcome (ok but FAILED, or the reverse). */
  | "command-outcome-mismatch"
  /** A command whose ack got a PUBACK is unknown to the bridge (404 on read-back). */
  | "command-missing"
  /** The bridge delivered a command again (a new PUBLISH, not the broker's resend) after its ack was acknowledged. */
  | "command-redelivered-after-ack"
  /** An operator API call the simulator made to drive the run (a command, a desired-state change) was refused. */
  | "api-request-failed"
  /** Reading the commands back failed, so the check could not be made. */
  | "command-unverifiable"
  /** The thermostat's reported state differs from the desired state it was last sent. */
  | "state-not-converged"
  /** Streamed reasoning chunks arrived out of order, after the final frame, or for an unknown request. */
  | "reason-out-of-order"
  /** A device that said `stream: false` received a partial (non-final) reasoning chunk. */
  | "stream-to-non-streaming-device"
  /** A device never completed a connection during the run. */
  | "device-never-connected"
  /** The broker refused a device's subscription to its own down topics (SUBACK 0x80); once per device. */
  | "subscription-refused";

/** One broken invariant. */
export interface Violation {
  kind: ViolationKind;
  deviceId: string;
  /** What happened, for humans. */
  message: string;
  /** Fleet clock time it was found, ms since the Unix epoch. */
  atMs: number;
}

/** Collects violations: counts every one, keeps the details of the first `maxDetails`. */
export class ViolationLog {
  readonly #maxDetails: number;
  readonly #details: Violation[] = [];
  readonly #counts = new Map<ViolationKind, number>();
  #total = 0;
  #listener: ((violation: Violation) => void) | undefined;

  constructor(maxDetails = 1000) {
    this.#maxDetails = maxDetails;
  }

  /** Called for every violation as it is found (the fleet turns it into a `violation` event). */
  onViolation(listener: (violation: Violation) => void): void {
    this.#listener = listener;
  }

  add(violation: Violation): void {
    this.#total++;
    this.#counts.set(violation.kind, (this.#counts.get(violation.kind) ?? 0) + 1);
    if (this.#details.length < this.#maxDetails) this.#details.push(violation);
    this.#listener?.(violation);
  }

  get total(): number {
    return this.#total;
  }

  /** Counts by kind. */
  counts(): Partial<Record<ViolationKind, number>> {
    return Object.fromEntries(this.#counts) as Partial<Record<ViolationKind, number>>;
  }

  /** The kept details (at most `maxDetails`). */
  details(): readonly Violation[] {
    return this.#details;
  }
}
