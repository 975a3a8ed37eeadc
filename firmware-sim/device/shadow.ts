/**
 * The device side of the shadow: what it was told to be (desired, from the shadow's `down/state` frames) and what it
 * says it is (reported, sent on `up/state` with the reported version the patch is based on). The agent's own state
 * arrives on `down/state` too and is not desired state: handlers/state.ts tells the two apart before the shadow sees
 * a frame.
 */
import type { DesiredStateFrame, ReportedStateFrame, Value, ValueMap } from "../../codecs/frames.ts";
import { mergePatch, valueEquals } from "./values.ts";

/** Outcome of a desired-state frame. */
export type DesiredOutcome =
  | { status: "apply"; patch: ValueMap }
  /** Older than a desired version already applied (a late redelivery): ignored. */
  | { status: "stale" };

/** Convergence at the end of a run. */
export type Convergence =
  | { status: "converged" }
  | { status: "no-desired-state" }
  | { status: "diverged"; key: string; desired: Value | undefined; reported: Value | undefined }
  | { status: "report-unconfirmed"; pending: number };

export class DeviceShadow {
  reported: ValueMap;
  /** The reported version the bridge holds, as far as the device knows; the base of the next patch. */
  reportedVersion = 0;
  #desired: ValueMap | undefined;
  #desiredVersion = -1;
  #pendingReports = 0;
  #lostReports = 0;

  constructor(initial: ValueMap) {
    this.reported = { ...initial };
  }

  get desired(): ValueMap | undefined {
    return this.#desired;
  }

  /**
   * Folds a desired-state frame in and says what to change locally (never the agent's state: see readDownState).
   *
   * A delta older than the version held is a late redelivery and is ignored. A full frame is the whole desired state
   * as the agent holds it now (the resync after a hello), so it replaces the version too, even with a lower one: an
   * agent destroyed and created again (the device removed and provisioned anew) starts its versions over, and keeping
   * the old, higher one would make each of its deltas look stale until its versions passed the old agent's.
   */
  onDesired(frame: DesiredStateFrame): DesiredOutcome {
    if (!frame.full && frame.v < this.#desiredVersion) return { status: "stale" };
    this.#desiredVersion = frame.full ? frame.v : Math.max(this.#desiredVersion, frame.v);
    this.#desired = frame.full ? { ...frame.d } : mergePatch(this.#desired ?? {}, frame.d);
    const patch: ValueMap = {};
    for (const [key, value] of Object.entries(frame.d)) {
      const differs = value === null ? Object.hasOwn(this.reported, key) : !valueEquals(this.reported[key], value);
      if (differs) patch[key] = value;
    }
    return { status: "apply", patch };
  }

  /** Applies `patch` locally and returns the frame reporting it (optimistically bumping the version). */
  report(patch: ValueMap): ReportedStateFrame {
    this.reported = mergePatch(this.reported, patch);
    const frame: ReportedStateFrame = { v: this.reportedVersion, s: patch };
    this.reportedVersion++;
    this.#pendingReports++;
    return frame;
  }

  /** The whole reported state as one patch (after a reconnect, or to recover from a stale version). */
  fullReport(): ReportedStateFrame {
    this.#lostReports = 0;
    return this.report({ ...this.reported });
  }

  /** The bridge said our base version was stale and gave its current one. */
  onStale(currentVersion: number): ReportedStateFrame {
    this.reportedVersion = currentVersion;
    return this.fullReport();
  }

  /** A report got its PUBACK. */
  reportConfirmed(): void {
    this.#pendingReports = Math.max(0, this.#pendingReports - 1);
  }

  /** A report fell out of the offline buffer: the next full report repairs it. */
  reportLost(): void {
    this.#pendingReports = Math.max(0, this.#pendingReports - 1);
    this.#lostReports++;
  }

  convergence(): Convergence {
    if (this.#desired === undefined) return { status: "no-desired-state" };
    if (this.#pendingReports > 0 || this.#lostReports > 0) {
      return { status: "report-unconfirmed", pending: this.#pendingReports + this.#lostReports };
    }
    for (const [key, value] of Object.entries(this.#desired)) {
      if (!valueEquals(value, this.reported[key])) {
        return { status: "diverged", key, desired: value, reported: this.reported[key] };
      }
    }
    return { status: "converged" };
  }
}
