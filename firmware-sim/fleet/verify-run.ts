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
  await eachConcurrently(entries, concurrency, async ([deviceId, seqs]) => {
    ackedMessages += seqs.length;
    const outcome = await readBack(() => verifier(deviceId, seqs));
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
  });
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
  await eachConcurrently(entries, concurrency, async ([deviceId, acked]) => {
    commands += acked.length;
    const outcome: CommandReadback = await readBack(() => verifier(deviceId, acked));
    if (outcome.status === "unavailable") {
      unavailableDevices++;
      violation({ kind: "command-unverifiable", deviceId, message: outcome.reason });
      return;
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
  });
  return { status: "checked", devices: entries.length, commands, unrecorded, mismatched, missing, unavailableDevices };
}

/**
 * Runs `visit` over `items` with at most `concurrency` visits in flight (a few devices at a time, so the read-back
 * does not flood the bridge's API); resolves when every item was visited.
 */
async function eachConcurrently<T>(
  items: readonly T[],
  concurrency: number,
  visit: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await visit(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, items.length)) }, worker));
}

/** Asks a verifier; a verifier that throws counts as an unavailable read-back, so one device never ends the run. */
async function readBack<R>(ask: () => Promise<R>): Promise<R | { status: "unavailable"; reason: string }> {
  try {
    return await ask();
  } catch (err) {
    return { status: "unavailable", reason: err instanceof Error ? err.message : String(err) };
  }
}
