/**
 * Records the SQL text of every better-sqlite3 statement executed while `spy.on` is set, by wrapping the methods of
 * the Statement prototype (every database of the process shares it). For tests that a hot path reads nothing it
 * should not; `restore` puts the methods back.
 */
import Database from "better-sqlite3";

export interface StatementSpy {
  spy: { on: boolean; readonly executed: string[] };
  restore(): void;
}

export function statementSpy(): StatementSpy {
  const probe = new Database(":memory:");
  const proto = Object.getPrototypeOf(probe.prepare("SELECT 1")) as Record<string, unknown>;
  probe.close();
  const names = ["get", "all", "run", "iterate"] as const;
  const original = new Map(names.map((n) => [n, proto[n] as (...args: unknown[]) => unknown]));
  const spy = { on: false, executed: [] as string[] };
  for (const name of names) {
    const fn = original.get(name)!;
    proto[name] = function (this: { source: string }, ...args: unknown[]) {
      if (spy.on) spy.executed.push(this.source);
      return fn.apply(this, args);
    };
  }
  return {
    spy,
    restore() {
      for (const name of names) proto[name] = original.get(name);
    },
  };
}
