import type { Value } from "../codecs/frames.ts";
import { BridgeError } from "../errors/bridge-error.ts";
import { Agent } from "./agent.ts";
import { AGENT_ERRORS } from "./errors.ts";

/** Methods of the base class (API and hooks): never callable by name from outside. Lazy: agent.ts imports us. */
let baseNames: ReadonlySet<string> | null = null;

function isBaseName(name: string): boolean {
  baseNames ??= new Set([...Object.getOwnPropertyNames(Agent.prototype), "constructor"]);
  return baseNames.has(name);
}

/**
 * Lookups by prototype, then name: an operator call or device rpc resolves its method on every event, and walking the
 * prototype chain with descriptors each time was a visible share of a one-event batch. Class prototypes do not gain
 * methods at run time; a WeakMap lets an unloaded class go.
 */
const methodCache = new WeakMap<object, Map<string, (...args: unknown[]) => unknown>>();

/** The function `name` of `agent` declared by a subclass, or undefined. Base API, hooks and `_private` are excluded. */
export function findPublicMethod(agent: Agent<Value>, name: string): ((...args: unknown[]) => unknown) | undefined {
  if (typeof name !== "string" || name.length === 0 || name.startsWith("_") || isBaseName(name)) return undefined;
  const start: object | null = Object.getPrototypeOf(agent);
  if (start === null) return undefined;
  let byName = methodCache.get(start);
  if (byName === undefined) {
    byName = new Map();
    methodCache.set(start, byName);
  }
  const hit = byName.get(name);
  if (hit !== undefined) return hit;
  const found = lookUpMethod(start, name);
  // Only names that exist are kept: a flood of unknown names must not grow the cache.
  if (found !== undefined) byName.set(name, found);
  return found;
}

function lookUpMethod(start: object, name: string): ((...args: unknown[]) => unknown) | undefined {
  let proto: object | null = start;
  while (proto !== null && proto !== Agent.prototype) {
    const desc = Object.getOwnPropertyDescriptor(proto, name);
    if (desc !== undefined)
      return typeof desc.value === "function" ? (desc.value as (...a: unknown[]) => unknown) : undefined;
    proto = Object.getPrototypeOf(proto);
  }
  return undefined;
}

/** The union of `static callable` along the class chain (a subclass adds to what its parents expose). */
export function callableNames(agent: Agent<Value>): ReadonlySet<string> {
  const names = new Set<string>();
  let ctor: unknown = agent.constructor;
  while (typeof ctor === "function" && ctor !== Agent) {
    const own = Object.getOwnPropertyDescriptor(ctor, "callable")?.value as unknown;
    if (Array.isArray(own)) for (const n of own) if (typeof n === "string") names.add(n);
    ctor = Object.getPrototypeOf(ctor);
  }
  return names;
}

/**
 * Calls `agent[method](...args)` for schedules, queue items and operator calls; the result must be a Value.
 * A synchronous method returns synchronously (no promise layer on the hot path); an async one returns its promise.
 */
export function invokeMethod(agent: Agent<Value>, method: string, args: unknown[]): Value | Promise<Value> {
  const fn = findPublicMethod(agent, method);
  if (fn === undefined) {
    throw new BridgeError(AGENT_ERRORS.CALL_UNKNOWN_METHOD, `agent has no public method ${JSON.stringify(method)}`, {
      method,
    });
  }
  const result = fn.apply(agent, args);
  if (result instanceof Promise) return result.then(toValue);
  return toValue(result);
}

function toValue(result: unknown): Value {
  return (result === undefined ? null : result) as Value;
}
