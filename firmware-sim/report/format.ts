/**
 * Text output of a run: the live progress line and the final summary table.
 */
import type { FleetReport } from "../fleet/report.ts";
import type { SimulatorErrorSummary } from "../fleet/simulator-errors.ts";
import type { FleetStats } from "../stats.ts";

/** One line of progress, e.g. `[12.0s] online 98/100  pub 1180  ack 1178  p50 1.2ms  p99 8.3ms  drop 0  viol 0`. */
export function formatProgress(s: FleetStats): string {
  const c = s.counters;
  return [
    `[${(s.elapsedMs / 1000).toFixed(1)}s]`,
    `online ${s.online}/${s.devices}`,
    `pub ${c.published}`,
    `ack ${c.acked}`,
    `p50 ${s.pubackLatency.p50Ms}ms`,
    `p99 ${s.pubackLatency.p99Ms}ms`,
    `reconn ${c.reconnects}`,
    `dropped ${c.bufferDropped}`,
    `viol ${s.violations}`,
  ].join("  ");
}

/** The final summary table (plain text, aligned columns), with up to `maxViolations` violation lines. */
export function formatSummary(report: FleetReport, maxViolations = 20): string {
  const s = report.stats;
  const c = s.counters;
  const l = report.pubackLatency;
  const rows: [string, string][] = [
    ["devices (powered / total)", `${s.started} / ${s.devices}`],
    ["active time", `${(report.activeMs / 1000).toFixed(1)} s`],
    ["connects (attempts)", `${c.connects} (${c.connectAttempts})`],
    [
      "refused CONNACK / refused SUBACK / connect errors",
      `${c.connectRefused} / ${c.subscribeRefused} / ${c.connectErrors}`,
    ],
    ["disconnects (by server / network drops)", `${c.disconnects} (${c.serverCloses} / ${c.networkDrops})`],
    ["published / acked", `${c.published} / ${c.acked}`],
    ["acked per second", `${report.ackedPerSec}`],
    ["retransmitted (DUP) / duplicates sent", `${c.retransmitted} / ${c.duplicatesSent}`],
    ["buffered offline / dropped oldest", `${c.buffered} / ${c.bufferDropped}`],
    ["undelivered at stop", `${report.undelivered}`],
    ["telemetry sent / acked", `${c.telemetrySent} / ${c.telemetryAcked}`],
    ["alias table hellos again / telemetry resent", `${c.aliasHellos} / ${c.telemetryResent}`],
    ["publish->PUBACK ms p50 / p90 / p99 / max", `${l.p50Ms} / ${l.p90Ms} / ${l.p99Ms} / ${l.maxMs}`],
    ["down frames received", `${c.downReceived}`],
    ["desired-state frames / state reports", `${c.desiredFrames} / ${c.stateReports}`],
    ["agent-state frames", `${c.agentStateFrames}`],
    [
      "commands received (redelivered) / acks (dropped)",
      `${c.commandsReceived} (${c.commandsRedelivered}) / ${c.acksSent} (${c.acksDropped})`,
    ],
    ["commands forgotten with every ack dropped", `${c.commandsForgotten}`],
    [
      "reasoning asked / finished / errors / timed out",
      `${c.reasonAsked} / ${c.reasonFinished} / ${c.reasonErrors} / ${c.reasonTimedOut}`,
    ],
    ["reasoning first chunk ms p50 / p99", `${s.reasonFirstChunk.p50Ms} / ${s.reasonFirstChunk.p99Ms}`],
    ["error frames", formatCounts(s.errorCodes, c.errorFrames)],
    ["CONNACK refusals", formatCounts(s.refusalCodes, c.connectRefused)],
    ["telemetry read-back", formatTelemetryCheck(report)],
    ["command read-back", formatCommandCheck(report)],
    ["simulator errors (bugs of the simulator)", `${c.simulatorErrors}`],
    ["violations", `${report.violations}`],
    ["verdict", report.ok ? "ok" : `FAILED: ${report.reasons.join("; ")}`],
  ];
  const d = report.apiDrive;
  if (d !== undefined) {
    rows.splice(rows.length - 3, 0, [
      "API: commands / desired changes / refused / skipped / unsent at stop",
      `${d.commandsIssued} / ${d.desiredIssued} / ${d.refused} / ${d.skipped} / ${d.unsentAtStop}`,
    ]);
    rows.splice(rows.length - 3, 0, [
      "API: shadows read back / not converged",
      `${d.shadowsChecked} / ${d.notConverged}`,
    ]);
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
  if (report.violations > 0) {
    lines.push("", "violations by kind:");
    for (const [kind, count] of Object.entries(report.violationCounts)) lines.push(`  ${kind}: ${count}`);
    lines.push("first violations:");
    for (const v of report.violationDetails.slice(0, maxViolations))
      lines.push(`  ${v.kind} ${v.deviceId}: ${v.message}`);
  }
  if (report.simulatorErrors.length > 0) {
    lines.push("", "simulator errors by kind:");
    for (const e of report.simulatorErrors)
      lines.push(`  ${e.count} x ${e.kind}${e.deviceId ? ` (first: ${e.deviceId})` : ""}`);
  }
  return lines.join("\n");
}

/** The log line of the first simulator error of a kind (the CLI prints it on stderr as it happens). */
export function formatSimulatorError(e: SimulatorErrorSummary): string {
  const where = e.deviceId === undefined ? "a fleet task" : `device ${e.deviceId}`;
  const at = e.stack?.split("\n")[0]?.trim();
  return `sim: simulator error in ${where}: ${e.kind}${at ? ` (${at})` : ""}; further ones of this kind are only counted`;
}

function formatCounts(counts: Record<string, number>, total: number): string {
  const parts = Object.entries(counts).map(([k, v]) => `${k}=${v}`);
  return parts.length === 0 ? String(total) : `${total} (${parts.join(", ")})`;
}

function formatCommandCheck(report: FleetReport): string {
  const t = report.commandCheck;
  if (t.status === "skipped") return `skipped (${t.reason})`;
  const right = t.commands - t.unrecorded - t.mismatched - t.missing;
  return `${right}/${t.commands} acked commands recorded with the ack's outcome on ${t.devices} devices (${t.unrecorded} waiting, ${t.mismatched} mismatched, ${t.missing} missing), ${t.unavailableDevices} unreadable`;
}

function formatTelemetryCheck(report: FleetReport): string {
  const t = report.telemetryCheck;
  if (t.status === "skipped") return `skipped (${t.reason})`;
  return `${t.ackedMessages - t.missingMessages}/${t.ackedMessages} readable on ${t.devices} devices, ${t.unavailableDevices} unreadable`;
}
