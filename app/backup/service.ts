/**
 * The running bridge's backups (`POST /api/backup`): one at a time (a second is refused with
 * BRIDGE_ERR_BACKUP_IN_PROGRESS, HTTP 409, rather than queued behind the first), written under `backup.dir` only, and
 * counted in the metrics. The work itself is snapshot.ts.
 */
import { BridgeError } from "../../errors/index.ts";
import { BACKUP_ERRORS } from "./errors.ts";
import { type SnapshotResult, type SnapshotSources, writeSnapshot } from "./snapshot.ts";
import { apiTarget } from "./target.ts";

/** What the metrics hear of backups (app/metrics/backup-metrics.ts). */
export interface BackupObserver {
  started(): void;
  /** The backup `started` told of ended; `refused`: its target was refused. `result` and `atMs` (wall clock) on `ok`. */
  finished(outcome: "ok" | "failed" | "refused", result?: SnapshotResult, atMs?: number): void;
  /** A request refused because another backup runs: counted as `refused`, and that one is still running. */
  refusedAsBusy(): void;
}

export class BackupService {
  readonly #sources: SnapshotSources;
  readonly #backupDir: string;
  readonly #observer: BackupObserver | undefined;
  #running = false;

  constructor(sources: SnapshotSources, backupDir: string, observer?: BackupObserver) {
    this.#sources = sources;
    this.#backupDir = backupDir;
    this.#observer = observer;
  }

  /** Takes a snapshot into `dir` under backup.dir (a generated name when absent). */
  async run(request: { dir?: string } = {}): Promise<SnapshotResult> {
    if (this.#running) {
      this.#observer?.refusedAsBusy();
      throw new BridgeError(BACKUP_ERRORS.IN_PROGRESS, "a backup is already running; try again when it has finished");
    }
    this.#running = true;
    this.#observer?.started();
    try {
      const target = apiTarget(this.#backupDir, request.dir, this.#sources.now());
      const result = await writeSnapshot(this.#sources, target);
      this.#observer?.finished("ok", result, this.#sources.now());
      return result;
    } catch (err) {
      // A refused target (outside backup.dir, existing) is the caller's to fix, not a failed backup.
      const refused = err instanceof BridgeError && err.code === BACKUP_ERRORS.TARGET;
      this.#observer?.finished(refused ? "refused" : "failed");
      throw err;
    } finally {
      this.#running = false;
    }
  }
}
