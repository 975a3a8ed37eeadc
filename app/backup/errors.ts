/** Stable error codes of backups (docs/errors.md, "Backups"). */
export const BACKUP_ERRORS = {
  /** The target is not allowed: it exists, lies inside another snapshot or the live data, or outside `backup.dir`. */
  TARGET: "BRIDGE_ERR_BACKUP_TARGET",
  /** Another backup of this bridge is running; one runs at a time. */
  IN_PROGRESS: "BRIDGE_ERR_BACKUP_IN_PROGRESS",
  /** A copy or a write failed (disk full, a database fault); nothing was left at the target. */
  FAILED: "BRIDGE_ERR_BACKUP_FAILED",
} as const;
