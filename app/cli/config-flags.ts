/**
 * Config loading shared by every command that needs settings (`start`, `devices`, `demo`): the config file from
 * `--config` or BRIDGE_CONFIG, the environment, the command's flags. Problems are printed, one per line, and end
 * the command with exit code 2.
 */
import { type BridgeConfig, formatConfigIssue, loadConfig } from "../config/index.ts";
import { CliExit, EXIT_USAGE } from "./exit.ts";

export function loadConfigOrExit(
  flags: Readonly<Record<string, unknown>>,
  env: Readonly<Record<string, string | undefined>> = process.env,
  overrides?: Readonly<Record<string, unknown>>,
): BridgeConfig {
  const file = typeof flags.config === "string" ? flags.config : env.BRIDGE_CONFIG || undefined;
  const result = loadConfig({ file, env, flags, overrides });
  if (result.ok) return result.config;
  for (const issue of result.issues) process.stderr.write(`${formatConfigIssue(issue)}\n`);
  throw new CliExit(EXIT_USAGE, "invalid configuration");
}
