/**
 * Config loading shared by every command that needs settings (`start`, `devices`, `demo`): the config file from
 * `--config` or BRIDGE_CONFIG, the environment, the command's flags. Problems are printed, one per line, and end
 * the command with exit code 2.
 */
import { BridgeError } from "../../errors/index.ts";
import type { AgentConfigIssue } from "../bridge/agent-config.ts";
import { type BridgeConfig, formatConfigIssue, loadConfig, sourceOf } from "../config/index.ts";
import { CliExit, EXIT_USAGE } from "./exit.ts";

/** A loaded configuration and where each setting came from (for the lines of problems found later). */
export interface LoadedConfig {
  config: BridgeConfig;
  sources: ReadonlyMap<string, string>;
}

export function loadConfigWithSourcesOrExit(
  flags: Readonly<Record<string, unknown>>,
  env: Readonly<Record<string, string | undefined>> = process.env,
  overrides?: Readonly<Record<string, unknown>>,
): LoadedConfig {
  const file = typeof flags.config === "string" ? flags.config : env.BRIDGE_CONFIG || undefined;
  const result = loadConfig({ file, env, flags, overrides });
  if (result.ok) return { config: result.config, sources: result.sources };
  for (const issue of result.issues) process.stderr.write(`${formatConfigIssue(issue)}\n`);
  throw new CliExit(EXIT_USAGE, "invalid configuration");
}

export function loadConfigOrExit(
  flags: Readonly<Record<string, unknown>>,
  env: Readonly<Record<string, string | undefined>> = process.env,
  overrides?: Readonly<Record<string, unknown>>,
): BridgeConfig {
  return loadConfigWithSourcesOrExit(flags, env, overrides).config;
}

/**
 * Ends the command as a bad setting does (one `config error:` line each, exit 2) when `err` is a configuration
 * problem `createBridge` found once the agent classes were loaded (`agents.config`: app/bridge/agent-config.ts).
 * Returns for any other error, which the caller reports as it did.
 */
export function exitOnAgentConfigError(err: unknown, sources: ReadonlyMap<string, string>): void {
  if (!(err instanceof BridgeError) || err.code !== "BRIDGE_ERR_CONFIG" || !Array.isArray(err.details.issues)) return;
  for (const issue of err.details.issues as AgentConfigIssue[]) {
    const source = issue.source ?? sourceOf(sources, issue.field);
    process.stderr.write(`${formatConfigIssue({ field: issue.field, message: issue.message, source })}\n`);
  }
  throw new CliExit(EXIT_USAGE, "invalid configuration");
}
