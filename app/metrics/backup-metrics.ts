/** The backups' series (docs/api.md, "Metrics"): how many ran and how they ended, the last success, one running. */
import { Counter, Gauge, type Registry } from "prom-client";
import type { BackupObserver } from "../backup/service.ts";

export function backupMetrics(registry: Registry): BackupObserver {
  const registers = [registry];
  const total = new Counter({
    name: "bridge_backups_total",
    help: "Backups asked for, by outcome (ok, failed, refused: another was running or the target was refused)",
    labelNames: ["outcome"],
    registers,
  });
  const running = new Gauge({ name: "bridge_backup_running", help: "1 while a backup runs", registers });
  const lastSuccess = new Gauge({
    name: "bridge_backup_last_success_timestamp_seconds",
    help: "Unix time the last successful backup finished (0 until one has)",
    registers,
  });
  const lastBytes = new Gauge({
    name: "bridge_backup_last_bytes",
    help: "Size of the last successful backup",
    registers,
  });
  const lastDuration = new Gauge({
    name: "bridge_backup_last_duration_seconds",
    help: "How long the last successful backup took",
    registers,
  });
  for (const outcome of ["ok", "failed", "refused"]) total.inc({ outcome }, 0);
  return {
    started: () => running.set(1),
    finished: (outcome, result, atMs) => {
      total.inc({ outcome });
      running.set(0);
      if (outcome !== "ok" || result === undefined || atMs === undefined) return;
      lastSuccess.set(atMs / 1000);
      lastBytes.set(result.bytes);
      lastDuration.set(result.durationMs / 1000);
    },
    // Not finished(): the gauge belongs to the backup that keeps running.
    refusedAsBusy: () => total.inc({ outcome: "refused" }),
  };
}
