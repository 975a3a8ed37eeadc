/**
 * The one check of per-class agent options (`agentConfig`) against the classes a runtime will serve, run by
 * createRuntime and by the bridge's start (app/bridge/agent-config.ts, with its config file's names): every key must
 * be the name of one of those classes (options are looked up by class name, so any other key would be ignored
 * without a word), and each class's `validateConfig` hook must accept its entry, or `{}` when it has none (a class's
 * own built-in options, such as a DeviceAgent subclass's `static deviceOptions`). createRuntime checks `agentWiring`
 * (what the embedder wires in, apart from the options) the same way, with each class's `validateWiring`. Without it,
 * an embedder's bad option failed every agent of the class at its first wake instead of the call that passed it.
 */
import { BridgeError } from "../errors/bridge-error.ts";
import type { AgentClass } from "./agent.ts";
import type { RuntimeOptions } from "./options.ts";
import type { AgentWiring } from "./types.ts";

/** One problem of `agentConfig` (or, at createRuntime, of `agentWiring`). */
export interface AgentConfigIssue {
  /**
   * `agentConfig.<ClassName>`, or `agentConfig.<ClassName>.<option>` when the hook named the option (the caller's
   * own prefix in place of `agentConfig`, see AgentConfigNames; `agentWiring.<ClassName>.<key>` for the wiring).
   */
  field: string;
  /** The rule, phrased to follow the field name (`must be an integer >= 0`). */
  message: string;
  /** The class whose hook refused, when one did. */
  agentClass?: string;
  /** Set when the bad option is not in `agentConfig`: the class's own options (`class Gauge`). */
  source?: string;
  /** What the hook threw. */
  cause?: unknown;
}

const CONFIG = "BRIDGE_ERR_CONFIG";

/** The classes a runtime of `options` serves, each once, the default first. */
function servedClasses(options: RuntimeOptions): AgentClass[] {
  return [...new Set([options.defaultAgentClass, ...(options.agentClasses ?? []).map((c) => c.agentClass)])];
}

/**
 * The entry of class `className` in `byClass` (agentConfig, agentWiring), undefined when it has none. Its own entries
 * only: a class may be named like a member of Object.prototype (`constructor`, `toString`), which a plain
 * `byClass[className]` would read from the prototype (a function) when the class has no entry.
 */
export function entryOfClass<T>(byClass: Readonly<Record<string, T>>, className: string): T | undefined {
  return Object.hasOwn(byClass, className) ? byClass[className] : undefined;
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
}

function notAClassOfThisRuntime(_key: string, classNames: readonly string[]): string {
  return `is not an agent class of this runtime (${classNames.join(", ")})`;
}

/**
 * What `cls`'s hook threw for `entry`, as an issue under `prefix` (`agentConfig.<Class>`). `ownValues`: the class has
 * values of its own under the entry's (options; not wiring), so a refused key the entry lacks is the class's.
 */
function hookIssue(
  prefix: string,
  cls: AgentClass,
  entry: Readonly<Record<string, unknown>>,
  err: unknown,
  ownValues: boolean,
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
  if (ownValues && !Object.hasOwn(entry, option)) issue.source = `class ${cls.name}`;
  return issue;
}

/**
 * Every problem of `agentConfig` (per-class options by class name) for a runtime serving `classes`, in its key order,
 * then those of classes without an entry (their own built-in options, checked as `{}`): an empty list when it is
 * good. The one check of both createRuntime and the bridge's start; `names` says how the caller names things.
 *
 * @example
 * agentConfigIssues({ Thermostat: { targetC: "warm" } }, [DeviceAgent, Thermostat], { field: "agents.config" })
 * // [{ field: "agents.config.Thermostat.targetC", message: "must be a number", agentClass: "Thermostat", cause }]
 */
export function agentConfigIssues(
  agentConfig: unknown,
  classes: readonly AgentClass[],
  names: AgentConfigNames = {},
): AgentConfigIssue[] {
  const prefix = names.field ?? "agentConfig";
  return perClassIssues(agentConfig, classes, {
    prefix,
    unknownClass: names.unknownClass ?? notAClassOfThisRuntime,
    kind: "options",
    // A class built without the base class's hooks (not an Agent subclass) has nothing to ask.
    hook: (cls, entry) => {
      if (typeof cls.validateConfig === "function") cls.validateConfig(entry);
    },
  });
}

/** What perClassIssues checks: `agentConfig` with `validateConfig`, or `agentWiring` with `validateWiring`. */
interface PerClassCheck {
  prefix: string;
  unknownClass: (key: string, classNames: readonly string[]) => string;
  /** What an entry holds, for the rules (`must be an object of options`); options may also come from the class. */
  kind: "options" | "values";
  hook: (cls: AgentClass, entry: Readonly<Record<string, unknown>>) => void;
}

/** The problems of `byClass` (entries by class name) for `classes`, in its key order, then those of the others. */
function perClassIssues(byClass: unknown, classes: readonly AgentClass[], c: PerClassCheck): AgentConfigIssue[] {
  if (!isOptions(byClass)) return [{ field: c.prefix, message: `must be an object of ${c.kind} by class name` }];
  const served = [...new Set(classes)];
  const classNames = [...new Set(served.map((cls) => cls.name))];
  const issues: AgentConfigIssue[] = [];
  const check = (cls: AgentClass, entry: Readonly<Record<string, unknown>>): void => {
    try {
      c.hook(cls, entry);
    } catch (err) {
      issues.push(hookIssue(c.prefix, cls, entry, err, c.kind === "options"));
    }
  };
  for (const [name, entry] of Object.entries(byClass)) {
    const named = served.filter((cls) => cls.name === name);
    if (named.length === 0) {
      issues.push({ field: `${c.prefix}.${name}`, message: c.unknownClass(name, classNames) });
    } else if (!isOptions(entry)) {
      issues.push({ field: `${c.prefix}.${name}`, message: `must be an object of ${c.kind}`, agentClass: name });
    } else for (const cls of named) check(cls, entry);
  }
  for (const cls of served) if (!Object.hasOwn(byClass, cls.name)) check(cls, {});
  return issues;
}

/**
 * Every problem of `agentWiring` (what the embedder wires in, by class name) for a runtime serving `classes`, found
 * as agentConfigIssues finds those of the options, with each class's `validateWiring`: a key naming no served class
 * or a value the class does not take would otherwise be ignored by every agent without a word.
 */
function agentWiringIssues(agentWiring: unknown, classes: readonly AgentClass[]): AgentConfigIssue[] {
  return perClassIssues(agentWiring, classes, {
    prefix: "agentWiring",
    unknownClass: notAClassOfThisRuntime,
    kind: "values",
    hook: (cls, entry: AgentWiring) => {
      if (typeof cls.validateWiring === "function") cls.validateWiring(entry);
    },
  });
}

/** Every problem of `options.agentConfig` and `options.agentWiring` for the classes the runtime serves. */
function runtimeConfigIssues(options: RuntimeOptions): AgentConfigIssue[] {
  const classes = servedClasses(options);
  return [
    ...agentConfigIssues(options.agentConfig ?? {}, classes),
    ...agentWiringIssues(options.agentWiring ?? {}, classes),
  ];
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
