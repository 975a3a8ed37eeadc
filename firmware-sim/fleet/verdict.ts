/**
 * The verdict of a run: `ok` only when the run checked something and found nothing wrong. A run with no violation can
 * still have failed: one where no device ever came online checked nothing, and one where the simulator's own code
 * threw may have missed what it was meant to find; neither may pass as a clean run in CI.
 */

/** What the verdict looks at. */
export interface VerdictInput {
  /** Simulated device instances (twins included). */
  devices: number;
  /** Instances powered on during the run. */
  powered: number;
  /** Instances that completed connect, subscribe and hello at least once. */
  everOnline: number;
  violations: number;
  /** Device tasks or handlers that threw (bugs of the simulator). */
  simulatorErrors: number;
}

/**
 * Why a run failed, one sentence each; empty when it passed.
 *
 * @example
 * verdictReasons({ devices: 10, powered: 10, everOnline: 0, violations: 10, simulatorErrors: 0 });
 * // ["10 violations", "no device came online (0 of 10 powered on)"]
 */
export function verdictReasons(input: VerdictInput): string[] {
  const reasons: string[] = [];
  if (input.violations > 0) reasons.push(`${input.violations} violation${input.violations === 1 ? "" : "s"}`);
  if (input.powered === 0) {
    reasons.push(`no device was powered on (0 of ${input.devices}): the run stopped before its connection ramp`);
  } else if (input.everOnline === 0) {
    reasons.push(`no device came online (0 of ${input.powered} powered on)`);
  }
  const errors = input.simulatorErrors;
  if (errors > 0) {
    // The simulator's own bug: what it measured and checked cannot be trusted, even without a violation.
    reasons.push(`${errors} simulator error${errors === 1 ? "" : "s"} (a device task or handler threw)`);
  }
  return reasons;
}
