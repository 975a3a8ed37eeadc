import fs from "node:fs";
import path from "node:path";
import { BridgeError } from "../errors/bridge-error.ts";
import { AGENT_ERRORS } from "./errors.ts";
import { isValidAgentId } from "./ids.ts";

/**
 * Makes the folder of the agent databases (`<dataDir>/agents`) when missing and returns the names of the files in it.
 * A fault is a BRIDGE_ERR_STORAGE naming the path and the problem (`details.path`, `details.errno`): a file where a
 * folder must be (the data dir itself, or `agents`), no permission, a read-only file system. Node's own error said
 * "ENOTDIR: not a directory, mkdir '<dataDir>/agents'" for a data dir that is a file, naming a path that does not exist.
 */
export function openAgentsDir(agentsDir: string): string[] {
  try {
    // Owner only: the agents' databases hold their devices' telemetry, state and conversations.
    fs.mkdirSync(agentsDir, { recursive: true, mode: 0o700 });
    return fs.readdirSync(agentsDir);
  } catch (err) {
    throw dirFault(err, agentsDir);
  }
}

/**
 * The ids of the agent databases in `agentsDir` (`<id>.db` files whose name is a valid agent id), sorted; none when
 * the folder is not there. What a backup copies, online (runtime-snapshot.ts) or offline (runtime-snapshot-closed.ts).
 */
export function agentIdsIn(agentsDir: string): string[] {
  if (!fs.existsSync(agentsDir)) return [];
  return fs
    .readdirSync(agentsDir)
    .filter((f) => f.endsWith(".db"))
    .map((f) => f.slice(0, -3))
    .filter(isValidAgentId)
    .sort();
}

function dirFault(err: unknown, agentsDir: string): BridgeError {
  const errno = (err as NodeJS.ErrnoException).code;
  const message = err instanceof Error ? err.message : String(err);
  let at = agentsDir;
  let problem: string;
  if (errno === "ENOTDIR" || errno === "EEXIST") {
    at = fileInTheWay(agentsDir) ?? agentsDir;
    problem = `${at} is a file, not a folder`;
  } else if (errno === "EACCES" || errno === "EPERM") problem = `permission denied (${message})`;
  else if (errno === "EROFS") problem = `the file system is read-only (${message})`;
  else problem = message;
  return new BridgeError(
    AGENT_ERRORS.STORAGE,
    `cannot use the agents' data folder ${agentsDir}: ${problem}`,
    { path: at, errno: errno ?? null },
    { cause: err },
  );
}

/** The first existing path from `dir` up that is not a folder; undefined when there is none. */
function fileInTheWay(dir: string): string | undefined {
  for (let p = path.resolve(dir); ; p = path.dirname(p)) {
    try {
      if (!fs.statSync(p).isDirectory()) return p;
    } catch {}
    if (path.dirname(p) === p) return undefined;
  }
}
