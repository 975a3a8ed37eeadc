/**
 * `agent-bridge backup [--out DIR]`: a snapshot of the data directory (app/backup/snapshot.ts), whether a bridge runs
 * on it or not. No bridge running: the command takes the data directory's lock for as long as it works (a bridge
 * starting meanwhile is refused, as by another bridge) and copies the closed databases itself, `--out` anywhere.
 * A bridge running: the command asks it (`POST /api/backup`), since only the bridge may open its agents' databases;
 * `--out` must then lie under the bridge's `backup.dir`.
 */
import fs from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { hasErrorCode } from "../../errors/index.ts";
import { backupDirOf } from "../backup/backup-dir.ts";
import type { SnapshotResult } from "../backup/snapshot.ts";
import { snapshotName } from "../backup/target.ts";
import { acquireDataDirLock } from "../bridge/data-dir-lock.ts";
import type { BridgeConfig } from "../config/index.ts";
import { operatorToken, operatorUrl, requestBackup } from "./backup-request.ts";
import { exitOnNewerDataDir, loadConfigOrExit } from "./config-flags.ts";
import { offlineSnapshot } from "./backup-offline.ts";
import { CliExit, EXIT_FAILURE } from "./exit.ts";

type Flags = Record<string, unknown>;

function fail(line: string): never {
  process.stderr.write(`error: ${line}\n`);
  throw new CliExit(EXIT_FAILURE);
}

function report(result: SnapshotResult, json: boolean): void {
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    const { dir, agents, bytes, durationMs } = result;
    process.stdout.write(`backup written to ${dir} (${agents} agents, ${bytes} bytes, ${Math.round(durationMs)} ms)\n`);
  }
}

async function backup(flags: Flags): Promise<void> {
  const config = loadConfigOrExit(flags);
  if (!fs.statSync(config.dataDir, { throwIfNoEntry: false })?.isDirectory()) {
    fail(`no data directory at ${config.dataDir}`);
  }
  const out = typeof flags.out === "string" ? path.resolve(flags.out) : undefined;
  let lock: ReturnType<typeof acquireDataDirLock>;
  try {
    lock = acquireDataDirLock(config.dataDir);
  } catch (err) {
    if (!hasErrorCode(err, "BRIDGE_ERR_DATA_DIR_LOCKED")) throw err;
    await online(config, flags, out);
    return;
  }
  try {
    process.stderr.write(`no bridge runs on ${config.dataDir}: copying its databases directly\n`);
    const target = out ?? path.join(backupDirOf(config), snapshotName(Date.now()));
    report(await offlineSnapshot(config.dataDir, target), flags.json === true);
  } catch (err) {
    // A database a newer build wrote: refused as `start` refuses it (exit 2), since only that build may copy it.
    exitOnNewerDataDir(err);
    fail(err instanceof Error ? err.message : String(err));
  } finally {
    lock.release();
  }
}

/** Asks the running bridge; its refusal or failure is printed as it words it. */
async function online(config: BridgeConfig, flags: Flags, out: string | undefined): Promise<void> {
  const url = typeof flags.url === "string" ? flags.url : operatorUrl(config);
  const token = operatorToken(config);
  if (token === undefined) {
    fail(`a bridge runs on ${config.dataDir}, but no operator token was found (http.apiToken or its api-token file)`);
  }
  process.stderr.write(`a bridge runs on ${config.dataDir}: asking it at ${url}\n`);
  let answer: Awaited<ReturnType<typeof requestBackup>>;
  try {
    answer = await requestBackup(url, token, out);
  } catch (err) {
    fail(`cannot reach the bridge at ${url} (${(err as Error).message}); give its address with --url`);
  }
  if (answer.status === 200) {
    report(answer.body as unknown as SnapshotResult, flags.json === true);
    return;
  }
  const error = (answer.body.error ?? {}) as { code?: string; message?: string };
  const hint =
    error.code === "BRIDGE_ERR_BACKUP_TARGET" && out !== undefined
      ? "; while a bridge runs, --out must name a new folder under its backup.dir (or stop the bridge)"
      : "";
  fail(`${error.message ?? `the bridge answered ${answer.status}`} (${error.code ?? answer.status})${hint}`);
}

export function registerBackupCommand(program: Command): void {
  program
    .command("backup")
    .description("snapshot every database of the data directory into a new folder (a bridge may be running)")
    .option("-c, --config <file>", "JSON config file (or BRIDGE_CONFIG)")
    .option("--data-dir <dir>", "data directory (or BRIDGE_DATA_DIR; default ./data)")
    .option("--backup-dir <dir>", "where snapshots go without --out (or BRIDGE_BACKUP_DIR; default <data-dir>/backups)")
    .option("--out <dir>", "the snapshot's folder, which must not exist (default <backup-dir>/backup-<UTC time>)")
    .option("--url <url>", "the running bridge's operator HTTP address (default from http.host and http.port)")
    .option("--json", "print {dir, agents, bytes, durationMs}")
    .action((flags: Flags) => backup(flags));
}
