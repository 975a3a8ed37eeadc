/**
 * The end-of-run read-back checks: ask the verifiers about every device's acknowledged telemetry and command acks,
 * a few devices at a time.
 */
import {
  type AckedCommand,
  type CommandReadback,
  type CommandVerifier,
  httpCommandVerifier,
} from "../invariants/command-check.ts";
import { httpTelemetryVerifier, type TelemetryVerifier } from "../invariants/telemetry-check.ts";
import type { Violation } from "../invariants/violations.ts";
import type { FleetOptions } from "./options.ts";
import type { CommandCheckResult, TelemetryCheckResult } from "./report.ts";

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

/** Turns the `verifyCommands` option into a verifier function. */
export function toCommandVerifier(option: FleetOptions["verifyCommands"]): CommandVerifier | undefined {
  if (option === undefined) return undefined;
  if (typeof option === "function") return option;
  return httpCommandVerifier({ baseUrl: option.apiUrl, token: option.token });
}

/**
 * Checks every device's acked commands; reports each unrecorded, mismatched or missing command and each unreadable
 * device through `violation`.
 */
export async function verifyCommands(
  verifier: CommandVerifier,
  ackedByDevice: ReadonlyMap<string, readonly AckedCommand[]>,
  concurrency: number,
  violation: (v: Omit<Violation, "atMs">) => void,
): Promise<CommandCheckResult> {
  const entries = [...ackedByDevice].filter(([, acked]) => acked.length > 0);
  let commands = 0;
  let unrecorded = 0;
  let mismatched = 0;
  let missing = 0;
  let unavailableDevices = 0;
  let next = 0;
  const worker = async () => {
    while (next < entries.length) {
      const [deviceId, acked] = entries[next++];
      commands += acked.length;
      let outcome: CommandReadback;
      try {
        outcome = await verifier(deviceId, acked);
      } catch (err) {
        outcome = { status: "unavailable", reason: err instanceof Error ? err.message : String(err) };
      }
      if (outcome.status === "unavailable") {
        unavailableDevices++;
        violation({ kind: "command-unverifiable", deviceId, message: outcome.reason });
        continue;
      }
      unrecorded += outcome.unrecorded.length;
      for (const { id, state } of outcome.unrecorded) {
        violation({
          kind: "command-ack-unrecorded",
          deviceId,
          message: `command ${id}: ack acknowledged, still ${state}`,
        });
      }
      for (const { id, state, expected } of outcome.mismatched ?? []) {
        mismatched++;
        violation({
          kind: "command-outcome-mismatch",
          deviceId,
          message: `command ${id}: the ack said ${expected === "SUCCEEDED" ? "ok" : "not ok"}, the bridge records ${state}`,
        });
      }
      for (const id of outcome.missing ?? []) {
        missing++;
        violation({ kind: "command-missing", deviceId, message: `command ${id}: acked, but the bridge answers 404` });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, entries.length)) }, worker));
  return { status: "checked", devices: entries.length, commands, unrecorded, mismatched, missing, unavailableDevices };
}
