/**
 * Checks `agentConfig` (per-class agent options) when a runtime is created, against the classes it will serve, as
 * the bridge's start does for its configuration (app/bridge/agent-config.ts): every key must be the name of one of
 * those classes (options are looked up by class name, so any other key would be ignored without a word), and each
 * class's `validateConfig` hook must accept its entry, or `{}` when it has none (a class's own built-in options, such
 * as a DeviceAgent subclass's `static deviceOptions`). `agentWiring` (values wired in beside the options) is given to
 * no hook; its keys are checked like `agentConfig`'s. Without it, an embedder's bad option failed every agent of the
 * class at its first wake instead of the call that passed it.
 */
import { BridgeError } from "../errors/bridge-error.ts";
import type { AgentClass } from "./agent.ts";
import type { RuntimeOptions } from "./options.ts";

/** One problem of `agentConfig`. */
export interface AgentConfigIssue {
  /** `agentConfig.<ClassName>`, or `agentConfig.<ClassName>.<option>` when the hook named the option. */
  field: string;
  /** The rule, phrased to follow the field name (`must be an integer >= 0`). */
  message: string;
  /** The class whose hook refused, when one did. */
  agentClass?: string;
  /** Set when the bad value is not in `agentConfig`: the class's own options (`class Gauge`). */
  source?: string;
  /** What the hook threw. */
  cause?: unknown;
}

const CONFIG = "BRIDGE_ERR_CONFIG";

/** The classes a runtime of `options` serves, each once, the default first. */
function servedClasses(options: RuntimeOptions): AgentClass[] {
  return [...new Set([options.defaultAgentClass, ...(options.agentClasses ?? []).map((c) => c.agentClass)])];
}

function isOptions(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** What `cls`'s hook threw for `entry`, as an issue. */
function hookIssue(cls: AgentClass, entry: Readonly<Record<string, unknown>>, err: unknown): AgentConfigIssue {
  const details = err instanceof BridgeError ? err.details : {};
  const option = typeof details.field === "string" ? details.field : undefined;
  const message =
    typeof details.rule === "string"
      ? details.rule
      : err instanceof Error
        ? err.message
        : `is refused (${String(err)})`;
  const issue: AgentConfigIssue = { field: `agentConfig.${cls.name}`, message, agentClass: cls.name, cause: err };
  if (option === undefined) return issue;
  issue.field += `.${option}`;
  if (!Object.hasOwn(entry, option)) issue.source = `class ${cls.name}`;
  return issue;
}

/** Every problem of `options.agentConfig`, in its key order, then those of served classes without an entry. */
export function agentConfigIssues(options: RuntimeOptions): AgentConfigIssue[] {
  const config: unknown = options.agentConfig ?? {};
  if (!isOptions(config)) return [{ field: "agentConfig", message: "must be an object of options by class name" }];
  const classes = servedClasses(options);
  const issues: AgentConfigIssue[] = [];
  const check = (cls: AgentClass, entry: Readonly<Record<string, unknown>>): void => {
    if (typeof cls.validateConfig !== "function") return;
    try {
      cls.validateConfig(entry);
    } catch (err) {
      issues.push(hookIssue(cls, entry, err));
    }
  };
  for (const [name, entry] of Object.entries(config)) {
    const named = classes.filter((cls) => cls.name === name);
    if (named.length === 0) {
      const known = [...new Set(classes.map((cls) => cls.name))].join(", ");
      issues.push({ field: `agentConfig.${name}`, message: `is not an agent class of this runtime (${known})` });
    } else if (!isOptions(entry)) {
      issues.push({ field: `agentConfig.${name}`, message: "must be an object of options", agentClass: name });
    } else for (const cls of named) check(cls, entry);
  }
  for (const cls of classes) if (!Object.hasOwn(config, cls.name)) check(cls, {});
  issues.push(...wiringIssues(options.agentWiring ?? {}, classes));
  return issues;
}

/**
 * Problems of `agentWiring` (values wired into `env.config` beside the options, never given to a hook): like an
 * `agentConfig` key, a key must name a served class and its entry be an object, or it would be ignored without a word.
 */
function wiringIssues(wiring: unknown, classes: readonly AgentClass[]): AgentConfigIssue[] {
  if (!isOptions(wiring)) return [{ field: "agentWiring", message: "must be an object of values by class name" }];
  const issues: AgentConfigIssue[] = [];
  for (const [name, entry] of Object.entries(wiring)) {
    if (!classes.some((cls) => cls.name === name)) {
      const known = [...new Set(classes.map((cls) => cls.name))].join(", ");
      issues.push({ field: `agentWiring.${name}`, message: `is not an agent class of this runtime (${known})` });
    } else if (!isOptions(entry)) {
      issues.push({ field: `agentWiring.${name}`, message: "must be an object of values", agentClass: name });
    }
  }
  return issues;
}

/**
 * Throws BRIDGE_ERR_CONFIG when `options.agentConfig` has a problem: the message lists them all, `details.field`,
 * `details.rule` and `details.agentClass` are the first's, `details.issues` all of them (without their causes), and
 * the cause is what the first refusing hook threw.
 */
export function checkAgentConfig(options: RuntimeOptions): void {
  const issues = agentConfigIssues(options);
  if (issues.length === 0) return;
  const first = issues[0];
  const message = issues.map((issue) => `${issue.field} ${issue.message}`).join("; ");
  const details: Record<string, unknown> = {
    field: first.field,
    rule: first.message,
    issues: issues.map(({ cause: _cause, ...issue }) => issue),
  };
  if (first.agentClass !== undefined) details.agentClass = first.agentClass;
  throw new BridgeError(CONFIG, message, details, { cause: issues.find((i) => i.cause !== undefined)?.cause });
}
