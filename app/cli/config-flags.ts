/**
 * Config loading shared by every command that needs settings (`start`, `devices`, `demo`): the config file from
 * `--config` or BRIDGE_CONFIG, the environment, the command's flags. Problems are printed, one per line, and end
 * the command with exit code 2; an agent class entry that cannot be used, with exit code 1.
 */
import { BridgeError } from "../../errors/index.ts";
import { AGENT_CLASS_ERROR } from "../bridge/agent-class-error.ts";
import type { AgentConfigIssue } from "../bridge/agent-config.ts";
import { type BridgeConfig, formatConfigIssue, loadConfig, sourceOf } from "../config/index.ts";
import { CliExit, EXIT_FAILURE, EXIT_USAGE } from "./exit.ts";

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
 * problem `createBridge` found: `agents.config` options checked once the agent classes were loaded
 * (app/bridge/agent-config.ts, `details.issues`), or a setting a part refuses as it is built although the schema
 * took it (the engine client refuses two URLs of one replica, or an API key with a line break; `details.field`).
 * Returns for any other error, which the caller reports as it did.
 */
export function exitOnConfigError(err: unknown, sources: ReadonlyMap<string, string>): void {
  if (!(err instanceof BridgeError) || err.code !== "BRIDGE_ERR_CONFIG") return;
  const issues = Array.isArray(err.details.issues) ? (err.details.issues as AgentConfigIssue[]) : issuesOf(err);
  if (issues.length === 0) return;
  for (const issue of issues) {
    const source = issue.source ?? sourceOf(sources, issue.field);
    process.stderr.write(`${formatConfigIssue({ field: issue.field, message: issue.message, source })}\n`);
  }
  throw new CliExit(EXIT_USAGE, "invalid configuration");
}

/**
 * Ends the command when `err` says an `agents.classes` entry cannot be used (BRIDGE_ERR_AGENT_CLASS: its module cannot
 * be loaded, or its export is no Agent subclass): one `error:` line naming the entry, exit 1, alike for `start` and the
 * `devices` commands that load the classes. It is the operator's setting to fix, not a fault of the bridge, so no fatal
 * log line and no stack. Returns for any other error.
 */
export function exitOnAgentClassError(err: unknown): void {
  if (!(err instanceof BridgeError) || err.code !== AGENT_CLASS_ERROR) return;
  process.stderr.write(`error: ${err.message}\n`);
  throw new CliExit(EXIT_FAILURE, "agent class cannot be used");
}

/** The one setting a BRIDGE_ERR_CONFIG names in `details.field`, its rule being the message after the field name. */
function issuesOf(err: BridgeError): AgentConfigIssue[] {
  const field = err.details.field;
  if (typeof field !== "string") return [];
  const rule = err.details.rule;
  if (typeof rule === "string") return [{ field, message: rule }];
  const message = err.message.startsWith(`${field} `) ? err.message.slice(field.length + 1) : err.message;
  return [{ field, message }];
}
