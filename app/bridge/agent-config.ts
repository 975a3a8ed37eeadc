/**
 * Checks `agents.config` (per-class agent options) when the bridge starts, against the classes it will serve, with
 * the runtime's own check (agents/agent-config-check.ts) under the config file's names: a bad option then stops the
 * start like any other setting, instead of failing every agent of the class when it wakes. The bridge adds what only
 * it knows: a key that is a configured class's export name, not its class name, is told so.
 */
import {
  type AgentClass,
  type AgentConfigIssue as RuntimeConfigIssue,
  agentConfigError as runtimeConfigError,
  agentConfigIssues,
} from "../../agents/index.ts";
import type { BridgeError } from "../../errors/index.ts";
import type { LoadedAgentClass } from "./agent-classes.ts";

/**
 * One problem, shaped like a config issue so `start` prints it as one: `field` is `agents.config.<ClassName>` or
 * `agents.config.<ClassName>.<option>`, `source` is set when the bad value is not in the config but the class's own
 * options (`class Thermostat`).
 */
export type AgentConfigIssue = Pick<RuntimeConfigIssue, "field" | "message" | "source">;

/** The configuration's settings, under `agents.config`, by class name. */
type AgentConfig = Readonly<Record<string, Readonly<Record<string, unknown>>>>;

/**
 * Every problem of `agentConfig`, in its key order, then those of classes without an entry (their own options): an
 * empty list when the bridge may start. `defaultClass` serves every device no pattern maps; `loaded` are the
 * configured classes, `exportNames` their `agents.classes[i].export` in the same order. What the bridge wires into
 * its agents itself (the command observer) is not among the options: createRuntime checks it.
 */
export function checkAgentConfig(
  agentConfig: AgentConfig,
  defaultClass: AgentClass,
  loaded: readonly LoadedAgentClass[],
  exportNames: readonly string[],
): AgentConfigIssue[] {
  const aliases = new Map<string, string>();
  loaded.forEach((entry, index) => {
    const exportName = exportNames[index];
    if (exportName !== undefined && exportName !== entry.agentClass.name)
      aliases.set(exportName, entry.agentClass.name);
  });
  const issues = agentConfigIssues(agentConfig, [defaultClass, ...loaded.map((entry) => entry.agentClass)], {
    field: "agents.config",
    unknownClass: (name, classNames) => {
      const className = aliases.get(name);
      if (className !== undefined) return `is the export name of class ${className}: options are keyed by class name`;
      return `is not an agent class of this bridge (${classNames.join(", ")})`;
    },
  });
  return issues.map(({ field, message, source }) =>
    source === undefined ? { field, message } : { field, message, source },
  );
}

/**
 * The error `createBridge` throws for `issues`: BRIDGE_ERR_CONFIG with `details.field` (the first) and
 * `details.issues` (all of them), which `start` prints one per line as config errors.
 */
export function agentConfigError(issues: readonly AgentConfigIssue[]): BridgeError {
  return runtimeConfigError(issues);
}
