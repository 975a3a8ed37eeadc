/**
 * The operator API token the `sim` command sends with `--verify-api`. A command line is visible to every user of the
 * machine (`ps`), so besides `--api-token` it takes the token the ways the bridge keeps its own: from the environment
 * (`BRIDGE_API_TOKEN`, the name the bridge reads) or from a file (`--api-token-file`, such as the bridge's
 * `<dataDir>/api-token`).
 */
import { readFileSync } from "node:fs";
// The bridge's own rule (a leaf module): a token it refuses to be configured with can never match its token.
import { API_TOKEN_RULE, isValidApiToken } from "../app/api/token-rule.ts";
import { BridgeError } from "../errors/index.ts";
import { SimErrorCode } from "./errors.ts";

/** Where the operator token came from, as a refusal names it. */
export type SimApiTokenSource = "--api-token" | "BRIDGE_API_TOKEN" | "AGENT_BRIDGE_API_TOKEN";

/**
 * The operator token: the flag, else BRIDGE_API_TOKEN (the name the bridge reads), else the older
 * AGENT_BRIDGE_API_TOKEN. Empty values count as unset.
 *
 * @example
 * simApiToken(undefined, { BRIDGE_API_TOKEN: "tok" }); // "tok"
 */
export function simApiToken(flag: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  return findSimApiToken(flag, env)?.token;
}

/** As simApiToken, with where the token came from. */
export function findSimApiToken(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
): { token: string; source: SimApiTokenSource } | undefined {
  const sources: ReadonlyArray<[SimApiTokenSource, string | undefined]> = [
    ["--api-token", flag],
    ["BRIDGE_API_TOKEN", env.BRIDGE_API_TOKEN],
    ["AGENT_BRIDGE_API_TOKEN", env.AGENT_BRIDGE_API_TOKEN],
  ];
  for (const [source, token] of sources) {
    if (token !== undefined && token !== "") return { token, source };
  }
  return undefined;
}

/**
 * The token, when the bridge's token rule (app/api/token-rule.ts) allows it; otherwise bad usage naming its source
 * and the rule: sent as it is, every request would only fail, with a 401 or a header Node refuses to write.
 */
export function checkSimApiToken(found: { token: string; source: SimApiTokenSource }): string {
  if (isValidApiToken(found.token)) return found.token;
  throw new BridgeError(SimErrorCode.options, `${found.source} must be ${API_TOKEN_RULE}`, {
    field: found.source,
    rule: API_TOKEN_RULE,
  });
}

/**
 * The token held in `file` (`--api-token-file`), without the line break the bridge writes after it. A file that cannot
 * be read, holds nothing, or holds what the bridge's token rule refuses (more than one line among it) is bad usage
 * naming the flag and the file: a run with it would only fail later, with 401s.
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
  if (!isValidApiToken(token)) {
    throw new BridgeError(SimErrorCode.options, `--api-token-file ${file} must hold ${API_TOKEN_RULE}`, {
      field: "--api-token-file",
      rule: API_TOKEN_RULE,
    });
  }
  return token;
}
