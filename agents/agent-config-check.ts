/**
 * The one check of per-class agent options (`agentConfig`) against the classes a runtime will serve, run by
 * createRuntime and by the bridge's start (app/bridge/agent-config.ts, with its config file's names): every key must
 * be the name of one of those classes (options are looked up by class name, so any other key would be ignored
 * without a word), and each class's `validateConfig` hook must accept its entry, or `{}` when it has none (a class's
 * own built-in options, such as a DeviceAgent subclass's `static deviceOptions`). `agentWiring` (values wired in
 * beside the options) is given to no hook; its keys are checked like `agentConfig`'s, and no option may be one of
 * its values (it would replace the option unchecked). Without it, an embedder's bad
 * option failed every agent of the class at its first wake instead of the call that passed it.
 */
import { BridgeError } from "../errors/bridge-error.ts";
import type { AgentClass } from "./agent.ts";
import type { RuntimeOptions } from "./options.ts";

/** One problem of `agentConfig`. */
export interface AgentConfigIssue {
  /**
   * `agentConfig.<ClassName>`, or `agentConfig.<ClassName>.<option>` when the hook named the option (the caller's
   * own prefix in place of `agentConfig`, see AgentConfigNames).
   */
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

/**
 * How a caller names what it checks: createRuntime checks `agentConfig`, the bridge's start its config file's
 * `agents.config`, and each says in its own words why a key names no class.
 */
export interface AgentConfigNames {
  /** What each issue's `field` starts with. Default `agentConfig`. */
  field?: string;
  /**
   * The rule for a key that names no served class, given the key and the served classes' names. Default
   * `is not an agent class of this runtime (<names>)`.
   */
  unknownClass?: (key: string, classNames: readonly string[]) => string;
  /**
   * The rule for an option that the values wired in beside the options (`agentWiring`) also set for its class.
   * Default `is wired in by the embedder (agentWiring), not an option`.
   */
  wiredOption?: string;
}

function notAClassOfThisRuntime(_key: string, classNames: readonly string[]): string {
  return `is not an agent class of this runtime (${classNames.join(", ")})`;
}

/** What `cls`'s hook threw for `entry`, as an issue under `prefix` (`agentConfig.<Class>`). */
function hookIssue(
  prefix: string,
  cls: AgentClass,
  entry: Readonly<Record<string, unknown>>,
  err: unknown,
): AgentConfigIssue {
  const details = err instanceof BridgeError ? err.details : {};
  const option = typeof details.field === "string" ? details.field : undefined;
  const message =
    typeof details.rule === "string"
      ? details.rule
      : err instanceof Error
        ? err.message
        : `is refused (${String(err)})`;
  const issue: AgentConfigIssue = { field: `${prefix}.${cls.name}`, message, agentClass: cls.name, cause: err };
  if (option === undefined) return issue;
  issue.field += `.${option}`;
  // A value the entry does not hold came from the class itself (a subclass's `static deviceOptions`).
  if (!Object.hasOwn(entry, option)) issue.source = `class ${cls.name}`;
  return issue;
}

/**
 * Every problem of `agentConfig` (per-class options by class name) for a runtime serving `classes`, in its key order,
 * then those of classes without an entry (their own built-in options, checked as `{}`): an empty list when it is
 * good. The one check of both createRuntime and the bridge's start; `names` says how the caller names things.
 * `wiring` holds the values the caller wires in beside the options (`agentWiring`, by class name): an option it also
 * sets is refused, since the wired value would replace it after its class's hook accepted it, unchecked and without a
 * word.
 *
 * @example
 * agentConfigIssues({ Thermostat: { targetC: "warm" } }, [DeviceAgent, Thermostat], { field: "agents.config" })
 * // [{ field: "agents.config.Thermostat.targetC", message: "must be a number", agentClass: "Thermostat", cause }]
 */
export function agentConfigIssues(
  agentConfig: unknown,
  classes: readonly AgentClass[],
  names: AgentConfigNames = {},
  wiring: Readonly<Record<string, unknown>> = {},
): AgentConfigIssue[] {
  const prefix = names.field ?? "agentConfig";
  if (!isOptions(agentConfig)) return [{ field: prefix, message: "must be an object of options by class name" }];
  const served = [...new Set(classes)];
  const classNames = [...new Set(served.map((cls) => cls.name))];
  const unknownClass = names.unknownClass ?? notAClassOfThisRuntime;
  const issues: AgentConfigIssue[] = [];
  const check = (cls: AgentClass, entry: Readonly<Record<string, unknown>>): void => {
    if (typeof cls.validateConfig !== "function") return;
    try {
      cls.validateConfig(entry);
    } catch (err) {
      issues.push(hookIssue(prefix, cls, entry, err));
    }
  };
  for (const [name, entry] of Object.entries(agentConfig)) {
    const named = served.filter((cls) => cls.name === name);
    if (named.length === 0) {
      issues.push({ field: `${prefix}.${name}`, message: unknownClass(name, classNames) });
    } else if (!isOptions(entry)) {
      issues.push({ field: `${prefix}.${name}`, message: "must be an object of options", agentClass: name });
    } else {
      for (const cls of named) check(cls, entry);
      issues.push(...wiredOptionIssues(prefix, name, entry, wiring[name], names, issues));
    }
  }
  for (const cls of served) if (!Object.hasOwn(agentConfig, cls.name)) check(cls, {});
  return issues;
}

/**
 * The options of class `name`'s `entry` that its wired values also set (see agentConfigIssues), but those already
 * reported (its hook refused them).
 */
function wiredOptionIssues(
  prefix: string,
  name: string,
  entry: Readonly<Record<string, unknown>>,
  wired: unknown,
  names: AgentConfigNames,
  reported: readonly AgentConfigIssue[],
): AgentConfigIssue[] {
  if (!isOptions(wired)) return [];
  const issues: AgentConfigIssue[] = [];
  for (const key of Object.keys(entry)) {
    const field = `${prefix}.${name}.${key}`;
    if (!Object.hasOwn(wired, key) || reported.some((issue) => issue.field === field)) continue;
    const message = names.wiredOption ?? "is wired in by the embedder (agentWiring), not an option";
    issues.push({ field, message, agentClass: name });
  }
  return issues;
}

/** Every problem of `options.agentConfig` and `options.agentWiring` for the classes the runtime serves. */
function runtimeConfigIssues(options: RuntimeOptions): AgentConfigIssue[] {
  const classes = servedClasses(options);
  const wiring = options.agentWiring ?? {};
  return [
    ...agentConfigIssues(options.agentConfig ?? {}, classes, {}, isOptions(wiring) ? wiring : {}),
    ...wiringIssues(wiring, classes),
  ];
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
      const classNames = [...new Set(classes.map((cls) => cls.name))];
      issues.push({ field: `agentWiring.${name}`, message: notAClassOfThisRuntime(name, classNames) });
    } else if (!isOptions(entry)) {
      issues.push({ field: `agentWiring.${name}`, message: "must be an object of values", agentClass: name });
    }
  }
  return issues;
}

/** Throws agentConfigError when `options.agentConfig` or `options.agentWiring` has a problem (createRuntime). */
export function checkAgentConfig(options: RuntimeOptions): void {
  const issues = runtimeConfigIssues(options);
  if (issues.length > 0) throw agentConfigError(issues);
}

/**
 * BRIDGE_ERR_CONFIG for `issues` (at least one): the message lists them all, `details.field`, `details.rule` and
 * `details.agentClass` are the first's, `details.issues` all of them (without their causes), and the cause is what the
 * first refusing hook threw.
 */
export function agentConfigError(issues: readonly AgentConfigIssue[]): BridgeError {
  const first = issues[0];
  const message = issues.map((issue) => `${issue.field} ${issue.message}`).join("; ");
  const details: Record<string, unknown> = {
    field: first.field,
    rule: first.message,
    issues: issues.map(({ cause: _cause, ...issue }) => issue),
  };
  if (first.agentClass !== undefined) details.agentClass = first.agentClass;
  return new BridgeError(CONFIG, message, details, { cause: issues.find((i) => i.cause !== undefined)?.cause });
}
