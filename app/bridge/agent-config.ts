/**
 * Checks `agents.config` (per-class agent options) when the bridge starts, against the classes it will serve. Every
 * key must be one of those classes' names (the runtime looks options up by class name, so any other key would be
 * ignored without a word), and each class's `validateConfig` hook must accept its entry: a bad option then stops the
 * start like any other setting, instead of failing every agent of the class when it wakes.
 */
import type { AgentClass } from "../../agents/index.ts";
import { BridgeError } from "../../errors/index.ts";
import type { LoadedAgentClass } from "./agent-classes.ts";

/** One problem, shaped like a config issue so `start` prints it as one. */
export interface AgentConfigIssue {
  /** `agents.config.<ClassName>`, or `agents.config.<ClassName>.<option>`. */
  field: string;
  /** The rule, phrased to follow the field name. */
  message: string;
  /** Set when the bad value is not in the config: the class's own options (`class Thermostat`). */
  source?: string;
}

/** The configuration's settings, under `agents.config`, by class name. */
type AgentConfig = Readonly<Record<string, Readonly<Record<string, unknown>>>>;

/** What a class's hook threw, as an issue of `agents.config.<name>`. */
function issueOf(name: string, entry: Readonly<Record<string, unknown>>, err: unknown): AgentConfigIssue {
  const details = err instanceof BridgeError ? err.details : {};
  const option = typeof details.field === "string" ? details.field : undefined;
  const message =
    typeof details.rule === "string"
      ? details.rule
      : err instanceof Error
        ? err.message
        : `is refused (${String(err)})`;
  if (option === undefined) return { field: `agents.config.${name}`, message };
  const field = `agents.config.${name}.${option}`;
  // A value the entry does not hold came from the class itself (a subclass's `static deviceOptions`).
  return Object.hasOwn(entry, option) ? { field, message } : { field, message, source: `class ${name}` };
}

/** Why `name` is not a key of `agents.config`: a class's export name, or no class at all. */
function unknownClassMessage(
  name: string,
  classes: readonly AgentClass[],
  exportNames: ReadonlyMap<string, string>,
): string {
  const className = exportNames.get(name);
  if (className !== undefined) return `is the export name of class ${className}: options are keyed by class name`;
  const known = [...new Set(classes.map((cls) => cls.name))].join(", ");
  return `is not an agent class of this bridge (${known})`;
}

/**
 * Every problem of `agentConfig`, in its key order, then those of classes without an entry (their own options): an
 * empty list when the bridge may start. `defaultClass` serves every device no pattern maps; `loaded` are the
 * configured classes, `exportNames` their `agents.classes[i].export` in the same order.
 */
export function checkAgentConfig(
  agentConfig: AgentConfig,
  defaultClass: AgentClass,
  loaded: readonly LoadedAgentClass[],
  exportNames: readonly string[],
): AgentConfigIssue[] {
  const classes = [...new Set([defaultClass, ...loaded.map((entry) => entry.agentClass)])];
  const aliases = new Map<string, string>();
  loaded.forEach((entry, index) => {
    const exportName = exportNames[index];
    if (exportName !== undefined && exportName !== entry.agentClass.name)
      aliases.set(exportName, entry.agentClass.name);
  });
  const issues: AgentConfigIssue[] = [];
  const check = (cls: AgentClass, entry: Readonly<Record<string, unknown>>): void => {
    try {
      cls.validateConfig(entry);
    } catch (err) {
      issues.push(issueOf(cls.name, entry, err));
    }
  };
  for (const [name, entry] of Object.entries(agentConfig)) {
    const named = classes.filter((cls) => cls.name === name);
    if (named.length === 0)
      issues.push({ field: `agents.config.${name}`, message: unknownClassMessage(name, classes, aliases) });
    for (const cls of named) check(cls, entry);
  }
  for (const cls of classes) if (!Object.hasOwn(agentConfig, cls.name)) check(cls, {});
  return issues;
}

/**
 * The error `createBridge` throws for `issues`: BRIDGE_ERR_CONFIG with `details.field` (the first) and
 * `details.issues` (all of them), which `start` prints one per line as config errors.
 */
export function agentConfigError(issues: readonly AgentConfigIssue[]): BridgeError {
  const message = issues.map((issue) => `${issue.field} ${issue.message}`).join("; ");
  return new BridgeError("BRIDGE_ERR_CONFIG", message, { field: issues[0]?.field, issues: [...issues] });
}
