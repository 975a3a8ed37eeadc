/**
 * The operator API token the `sim` command sends with `--verify-api`. A command line is visible to every user of the
 * machine (`ps`), so besides `--api-token` it takes the token the ways the bridge keeps its own: from the environment
 * (`BRIDGE_API_TOKEN`, the name the bridge reads) or from a file (`--api-token-file`, such as the bridge's
 * `<dataDir>/api-token`).
 */
import { readFileSync } from "node:fs";
import { BridgeError } from "../errors/index.ts";
import { SimErrorCode } from "./errors.ts";

/**
 * The operator token: the flag, else BRIDGE_API_TOKEN (the name the bridge reads), else the older
 * AGENT_BRIDGE_API_TOKEN. Empty values count as unset.
 *
 * @example
 * simApiToken(undefined, { BRIDGE_API_TOKEN: "tok" }); // "tok"
 */
export function simApiToken(flag: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  return nonEmpty(flag) ?? nonEmpty(env.BRIDGE_API_TOKEN) ?? nonEmpty(env.AGENT_BRIDGE_API_TOKEN);
}

/**
 * The token held in `file` (`--api-token-file`), without the line break the bridge writes after it. A file that cannot
 * be read or holds nothing is bad usage naming the flag: a run without the token would only fail later, with 401s.
 */
export function readApiTokenFile(file: string): string {
  let token: string;
  try {
    token = readFileSync(file, "utf8").trim();
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new BridgeError(
      SimErrorCode.options,
      `--api-token-file cannot read ${file}: ${reason}`,
      { field: "--api-token-file" },
      { cause: err },
    );
  }
  if (token === "") {
    throw new BridgeError(SimErrorCode.options, `--api-token-file ${file} holds no token`, {
      field: "--api-token-file",
    });
  }
  return token;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}
