/**
 * Node arguments for a process a benchmark starts from a script (the engine simulator, the floor relay, the fleet
 * benchmark's baselines): it loads TypeScript the way the `agent-bridge` command does (bin/register-loaders.mjs), so
 * a baseline is not slowed by a transform the bridge it is compared with does not pay.
 */
import path from "node:path";
import { pathToFileURL } from "node:url";

export const COMMAND_LOADER: readonly string[] = [
  "--import",
  pathToFileURL(path.resolve(import.meta.dirname, "../bin/register-loaders.mjs")).href,
];
