/** Makes the data directory a bridge keeps everything in, or says which setting names an unusable path. */
import { mkdirSync } from "node:fs";
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
