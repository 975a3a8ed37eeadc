/**
 * Config loading shared by every command that needs settings (`start`, `devices`, `demo`): the config file from
 * `--config` or BRIDGE_CONFIG, the environment, the command's flags. Problems are printed, one per line, and end
 * the command with exit code 2; an agent class entry that cannot be used, with exit code 1. The same module ends a
 * start or a demo on the other problems the operator resolves, each as one plain line: a data directory another bridge
 * holds (exit 1), an `api-token` file that cannot be used (exit 2).
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
 * Ends the command with one line on stderr (`<prefix>: <message>`) and `exitCode` when `err` is a BridgeError of
 * `code`: a problem the operator resolves (a setting, a file, another bridge), so no fatal log line and no stack.
 * Returns for any other error.
 */
function exitOnCode(err: unknown, code: string, prefix: "error" | "config error", exitCode: number): void {
  if (!(err instanceof BridgeError) || err.code !== code) return;
  process.stderr.write(`${prefix}: ${err.message}\n`);
  throw new CliExit(exitCode, `${code}: ${err.message}`);
}

/**
 * Ends the command when `err` says an `agents.classes` entry cannot be used (BRIDGE_ERR_AGENT_CLASS: its module cannot
 * be loaded, or its export is no Agent subclass): one `error:` line naming the entry, exit 1, alike for `start` and the
 * `devices` commands that load the classes. It is the operator's setting to fix, not a fault of the bridge, so no fatal
 * log line and no stack. Returns for any other error.
 */
export function exitOnAgentClassError(err: unknown): void {
  exitOnCode(err, AGENT_CLASS_ERROR, "error", EXIT_FAILURE);
}

/**
 * Ends the command when another running bridge holds the data directory (BRIDGE_ERR_DATA_DIR_LOCKED): one `error:`
 * line naming the directory and the holder's pid and host (or the lock file it cannot use), exit 1, a conflict at run
 * time rather than a bad setting. Returns for any other error.
 */
function exitOnDataDirLocked(err: unknown): void {
  exitOnCode(err, "BRIDGE_ERR_DATA_DIR_LOCKED", "error", EXIT_FAILURE);
}

/**
 * Ends the command when the stored operator token cannot be used (BRIDGE_ERR_API_TOKEN: `<dataDir>/api-token` cannot
 * be read or written, or breaks the token rule): one `config error:` line naming the file and the rule, exit 2, as
 * for an invalid `http.apiToken`, which the same rule refuses. Returns for any other error.
 */
function exitOnApiTokenError(err: unknown): void {
  exitOnCode(err, "BRIDGE_ERR_API_TOKEN", "config error", EXIT_USAGE);
}

/**
 * Ends the command when a database of the data directory was written by a newer build (its schema version is past
 * the one this build knows: `details.schemaVersion` > `details.knownSchemaVersion`, the registry's and the runtime's
 * refusal, at `start` or at an offline `backup`): one `error:` line naming the file and both versions, exit 2. Only
 * another build resolves it, so a service manager must not restart this one in a loop (the systemd unit's
 * `RestartPreventExitStatus=2`). Returns otherwise.
 */
export function exitOnNewerDataDir(err: unknown): void {
  if (!(err instanceof BridgeError)) return;
  const { schemaVersion, knownSchemaVersion } = err.details;
  if (typeof schemaVersion !== "number" || typeof knownSchemaVersion !== "number") return;
  if (schemaVersion <= knownSchemaVersion) return;
  process.stderr.write(`error: ${err.message}\n`);
  throw new CliExit(EXIT_USAGE, `${err.code}: ${err.message}`);
}

/**
 * Ends `start` or `demo` when building the bridge failed on something the operator resolves: a setting (its lines,
 * exit 2), an agents.classes entry (one line, exit 1, as `devices` ends), another bridge on the data directory (one
 * line naming its holder, exit 1), an unusable api-token file (one line naming the file and the rule, exit 2), a
 * database a newer build wrote (one line naming it, exit 2). Returns for any other error, a fault the caller reports.
 */
export function exitOnBridgeBuildError(err: unknown, sources: ReadonlyMap<string, string>): void {
  exitOnConfigError(err, sources);
  exitOnAgentClassError(err);
  exitOnDataDirLocked(err);
  exitOnApiTokenError(err);
  exitOnNewerDataDir(err);
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
