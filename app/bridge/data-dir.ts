/** Makes the data directory a bridge keeps everything in, or says which setting names an unusable path. */
import { mkdirSync, statSync } from "node:fs";
import { BridgeError } from "../../errors/index.ts";

/**
 * Creates `dir` (and its parents) when missing. A path that cannot be a directory (a file is there or on its way) is
 * the operator's `dataDir` to fix, not a fault of the bridge: BRIDGE_ERR_CONFIG naming `dataDir`, which `start` and
 * `demo` print as one `config error:` line, rather than the system error's stack in a fatal log line.
 */
export function makeDataDir(dir: string): void {
  try {
    // Owner only: it holds the registry's secret hashes, the API token and every agent's data. Applies to the folders
    // created here; an existing directory keeps the mode its operator gave it (docs/configuration.md).
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const rule =
      code === "EEXIST"
        ? "is a file, not a directory"
        : code === "ENOTDIR"
          ? "cannot be created: part of its path is a file"
          : `cannot be created (${code ?? String(cause)})`;
    throw new BridgeError(
      "BRIDGE_ERR_CONFIG",
      `dataDir ${dir} ${rule}`,
      { field: "dataDir", rule: `${dir} ${rule}` },
      { cause },
    );
  }
}

/**
 * Warns when the data directory can be read or entered by other users. makeDataDir creates it owner-only, but one an
 * earlier version made (or an operator created) keeps its mode, and mosquitto warns likewise about a password file
 * others can read. A warning, not a refusal: a group-shared directory can be a deliberate choice.
 */
export function warnIfOpenToOthers(dir: string, logger: { warn(fields: object, message: string): void }): void {
  // Windows has no such mode bits: Node reports made-up ones there.
  if (process.platform === "win32") return;
  let mode: number;
  try {
    mode = statSync(dir).mode & 0o777;
  } catch {
    return; // The lock and the stores opened next report a directory that went away.
  }
  if ((mode & 0o077) === 0) return;
  logger.warn(
    { dataDir: dir, mode: mode.toString(8).padStart(4, "0") },
    "data directory is open to other users, and it holds the device registry's secret hashes, the API token and " +
      "every agent's data: chmod 700 it",
  );
}
