/**
 * The end-of-run telemetry check: ask the verifier about every device's acknowledged seqs, a few devices at a time.
 */
import { httpTelemetryVerifier, type TelemetryVerifier } from "../invariants/telemetry-check.ts";
import type { Violation } from "../invariants/violations.ts";
import type { FleetOptions } from "./options.ts";
import type { TelemetryCheckResult } from "./report.ts";

/** Turns the `verifyTelemetry` option into a verifier function. */
export function toVerifier(option: FleetOptions["verifyTelemetry"]): TelemetryVerifier | undefined {
  if (option === undefined) return undefined;
  if (typeof option === "function") return option;
  return httpTelemetryVerifier({ baseUrl: option.apiUrl, token: option.token });
}

/** Checks every device; reports each missing or unreadable device through `violation`. */
export async function verifyTelemetry(
  verifier: TelemetryVerifier,
  ackedByDevice: ReadonlyMap<string, readonly number[]>,
  concurrency: number,
  violation: (v: Omit<Violation, "atMs">) => void,
): Promise<TelemetryCheckResult> {
  const entries = [...ackedByDevice].filter(([, seqs]) => seqs.length > 0);
  let ackedMessages = 0;
  let missingMessages = 0;
  let unavailableDevices = 0;
  let next = 0;
  const worker = async () => {
    while (next < entries.length) {
      const [deviceId, seqs] = entries[next++];
      ackedMessages += seqs.length;
      let outcome: Awaited<ReturnType<TelemetryVerifier>>;
      try {
        outcome = await verifier(deviceId, seqs);
      } catch (err) {
        outcome = { status: "unavailable", reason: err instanceof Error ? err.message : String(err) };
      }
      if (outcome.status === "unavailable") {
        unavailableDevices++;
        violation({ kind: "telemetry-unverifiable", deviceId, message: outcome.reason });
      } else if (outcome.missingSeqs.length > 0) {
        missingMessages += outcome.missingSeqs.length;
        const sample = outcome.missingSeqs.slice(0, 5).join(", ");
        violation({
          kind: "telemetry-lost",
          deviceId,
          message: `${outcome.missingSeqs.length} of ${seqs.length} acknowledged messages not readable (seq ${sample}${outcome.missingSeqs.length > 5 ? ", ..." : ""})`,
        });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, entries.length)) }, worker));
  return { status: "checked", devices: entries.length, ackedMessages, missingMessages, unavailableDevices };
}
