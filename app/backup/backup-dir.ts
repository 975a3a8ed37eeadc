import path from "node:path";
import type { BridgeConfig } from "../config/index.ts";
import { BACKUP_DIR_NAME } from "../config/schema.ts";

/** The folder the API writes snapshots into: `backup.dir`, by default `<dataDir>/backups` (docs/configuration.md). */
export function backupDirOf(config: Pick<BridgeConfig, "dataDir" | "backup">): string {
  return path.resolve(config.backup.dir ?? path.join(config.dataDir, BACKUP_DIR_NAME));
}
